# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Secrets read from files, and the one rule for masking them in a module's output.

Ansible replaces every occurrence of each value of `module.no_log_values` in the result with
`********`: an empty value, or one of a character or two, would garble every word of the output
(`'ok'` becomes `'****o****k****'`) while hiding nothing a reader could not guess. So an empty
secret is refused, and a value shorter than MIN_MASKED_LENGTH is never added to the mask list.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters

MIN_MASKED_LENGTH = 4


def mask(module, value, option):
    """Add value to the module's mask list when it is long enough to be masked without garbling
    the output; warn (naming the option, never the value) when it is not. True when masked."""
    if not isinstance(value, str) or not value:
        return False
    if len(value) < MIN_MASKED_LENGTH:
        module.warn(
            f"{option}: the secret is shorter than {MIN_MASKED_LENGTH} characters, so it is not masked in the "
            "output (masking it would garble every word that contains it); use a longer secret"
        )
        return False
    module.no_log_values.add(value)
    return True


def read_secret_file(path, option):
    """The first line of the file at path, without its line ending; an empty secret (or a file that
    cannot be read) is an InvalidParameters naming the option and the path - never the content."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise InvalidParameters(f"{option}={path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidParameters(f"{option}={path}: not UTF-8 text (byte {exc.start})") from exc
    if not value:
        raise InvalidParameters(
            f"{option}={path}: the file is empty (its first line holds the secret); nothing was done"
        )
    return value
