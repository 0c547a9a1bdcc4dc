# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HAProxy's names (backends, servers, routes) and what may go into a Runtime API command.

The Runtime API runs every command of a line, separated by ';', and a name also ends up in
configuration lines: a name HAProxy would not accept itself (`be_api; set server ... state maint`,
a newline) smuggles a second command or directive in. Every name a module sends or writes is
checked here first, against HAProxy's own rule, so a hostile one fails naming its parameter before
anything is sent; the client refuses any command that could still carry a second one.
"""

from __future__ import annotations

import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters

# HAProxy's own characters for proxy and server names (cfgparse's invalid_char()); a length kept sane.
NAME_CHARACTERS = "A-Z a-z 0-9 _ . : -"
MAX_NAME_LENGTH = 128
NAME_RE = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_NAME_LENGTH}}}")
ALLOWED = f"1 to {MAX_NAME_LENGTH} of the characters {NAME_CHARACTERS}"

# Ends a command (';', a newline) or is no part of one (other control characters).
COMMAND_BREAKERS_RE = re.compile(r"[;\x00-\x1f\x7f]")
# The master CLI's routing prefix: a worker by relative number (@1), by pid (@!1234), or the master.
PREFIX_RE = re.compile(r"(@(?:!?[0-9]+|master) )?")


def is_name(value):
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def check_name(parameter, value):
    """value, when HAProxy would take it as a name; InvalidParameters naming parameter otherwise."""
    if not is_name(value):
        raise InvalidParameters(f"{parameter}={value!r} is not an HAProxy name: use {ALLOWED}")
    return value


def check_names(parameter, values):
    """Each of values (a list, or the keys of a dict: server names) as check_name does."""
    for value in values or ():
        if not is_name(value):
            raise InvalidParameters(f"{parameter}: {value!r} is not an HAProxy name: use {ALLOWED}")
    return values


def check_prefix(parameter, value):
    """A master CLI prefix ('', '@1 ', '@!1234 ', '@master ')."""
    if not isinstance(value, str) or PREFIX_RE.fullmatch(value) is None:
        raise InvalidParameters(
            f"{parameter}={value!r}: use a master CLI prefix - empty, '@1 ' (a worker by number), "
            "'@!<pid> ' or '@master '"
        )
    return value


def check_command(command):
    """command, unless it could end early and carry another one (defence in depth behind check_name)."""
    found = COMMAND_BREAKERS_RE.search(command)
    if found:
        raise InvalidParameters(
            f"refusing to send {command!r} to the HAProxy Runtime API: it contains {found.group()!r}; a command "
            "holds no ';', newline or other control character (each would end it and start another)"
        )
    return command
