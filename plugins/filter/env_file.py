# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""env_file: the content of a Compose env file (color.env, data.env), one KEY=value per line.

A newline in a value would start a line of its own, a variable nobody set (`v2\nDATABASE_URL=...`), and so would
a value that starts with a quote (Compose reads a quoted value up to its closing quote, then the rest of the line
as the next variable); a key that is not a shell-style name is not a variable at all. Each value is written in
single quotes, which Compose takes literally (no `$` expansion, no `#` comment): a value holding a single quote,
a newline, a carriage return or NUL is refused, naming the variable and the key, never the value (it may be a
secret).
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENVIRONMENT_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
FORBIDDEN_IN_VALUE = re.compile(r"['\n\r\x00]")


def variables_as_text(variables, variable):
    """(name, value as text) of variables (a dict), each name a variable name and each value a scalar;
    AnsibleFilterError naming variable and the key otherwise (never the value)."""
    if not isinstance(variables, dict):
        raise AnsibleFilterError(f"{variable} must be a dict of NAME: value")
    for key, value in variables.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise AnsibleFilterError(
                f"{variable}: {key!r} is not a variable name - use letters, digits and _, not starting with a digit"
            )
        if value is None or isinstance(value, (dict, list)):
            raise AnsibleFilterError(f"{variable}.{key} must be a string, a number or a boolean")
        yield key, str(value)


def env_file(variables, variable="the environment"):
    """'KEY='value'\n' lines of variables (a dict); AnsibleFilterError naming variable and the key otherwise."""
    lines = []
    for key, text in variables_as_text(variables, variable):
        # A value ending in a backslash would escape its closing quote: Compose would read on into the next line.
        if FORBIDDEN_IN_VALUE.search(text) or text.endswith("\\"):
            raise AnsibleFilterError(
                f"{variable}.{key} holds a single quote, newline, carriage return or NUL, or ends with a backslash: "
                "an env file has one variable per line, each value in single quotes (the value is not shown)"
            )
        lines.append(f"{key}='{text}'\n")
    return "".join(lines)


def compose_environment(variables, variable="the environment"):
    """variables as a Compose `environment:` mapping that Compose takes literally: each `$` doubled (Compose would
    interpolate `$word` in a password to an empty string), booleans as YAML writes them, null (the host's value)
    kept; a key may hold '.' and '-' as Compose allows there, never '=' or a space."""
    if not isinstance(variables, dict):
        raise AnsibleFilterError(f"{variable} must be a dict of NAME: value")
    literal = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not ENVIRONMENT_KEY_RE.match(key):
            raise AnsibleFilterError(
                f"{variable}: {key!r} is not a variable name - use letters, digits, _, . and -, not starting with a "
                "digit"
            )
        if isinstance(value, (dict, list)):
            raise AnsibleFilterError(f"{variable}.{key} must be a string, a number, a boolean or null")
        if value is None:
            literal[key] = None
        elif isinstance(value, bool):
            literal[key] = "true" if value else "false"
        else:
            literal[key] = str(value).replace("$", "$$")
    return literal


class FilterModule:
    def filters(self):
        return {"env_file": env_file, "compose_environment": compose_environment}
