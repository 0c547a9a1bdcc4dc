# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading and rewriting the `server` lines of an HAProxy configuration, token by token.

Runtime changes are lost on reload unless the configuration says the same, so every weight and
maint change is also written here. Only the `weight` and `disabled` keywords of the servers
touched change, in place; every other byte of the file stays as it was.
"""

from __future__ import annotations

import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

SECTION_RE = re.compile(
    r"^\s*(global|defaults|frontend|backend|listen|resolvers|peers|userlist|program|cache|"
    r"mailers|http-errors|ring)\b\s*(\S*)"
)


class ConfigError(SwitchyardError):
    """The configuration lacks what a change names, or has what it cannot read."""


def _server_lines(lines):
    """Yield (index, backend, server name, tokens) for every server line in a backend/listen section."""
    section, name = None, None
    for index, line in enumerate(lines):
        match = SECTION_RE.match(line)
        if match:
            section, name = match.group(1), match.group(2)
            continue
        if section not in ("backend", "listen"):
            continue
        code = line.split("#", 1)[0]
        tokens = code.split()
        if len(tokens) >= 2 and tokens[0] == "server":
            yield index, name, tokens[1], line


def servers_in_config(text):
    """{backend: {server: {"weight": int (1 when absent, HAProxy's default), "disabled": bool}}}."""
    found = {}
    for _index, backend, server, line in _server_lines(text.splitlines()):
        tokens = line.split("#", 1)[0].split()
        weight = 1
        if "weight" in tokens:
            position = tokens.index("weight")
            if position + 1 >= len(tokens) or not tokens[position + 1].isdigit():
                raise ConfigError(f"backend {backend}, server {server}: 'weight' without a number")
            weight = int(tokens[position + 1])
        found.setdefault(backend, {})[server] = {"weight": weight, "disabled": "disabled" in tokens[3:]}
    return found


def _rewrite_line(line, weight, disabled):
    """The same line with weight and disabled set; indentation, comment and the order of the other keywords kept.

    A weight is changed where it stands (appended when absent) and `disabled` follows it: the order the lb role's
    template writes, so that its next run finds the file unchanged (a needless reload closes idle keep-alive
    connections under clients).
    """
    indent = line[: len(line) - len(line.lstrip())]
    code, hash_, comment = line.partition("#")
    tokens = code.split()
    head, options = tokens[:3], tokens[3:]
    if disabled is not None:
        options = [token for token in options if token not in ("disabled", "enabled")]
    at = options.index("weight") if "weight" in options else None
    if weight is not None:
        # HAProxy takes the last of several weights; one is kept, where the first stood.
        kept = []
        for position, token in enumerate(options):
            if position > 0 and options[position - 1] == "weight" and position - 1 != at:
                continue
            if token == "weight" and position != at:
                continue
            kept.append(str(weight) if at is not None and position == at + 1 else token)
        if at is not None and len(kept) == at + 1:
            kept.append(str(weight))  # a trailing `weight` without its number
        options = kept if at is not None else [*kept, "weight", str(weight)]
        at = options.index("weight")
    if disabled:
        after = at + 2 if at is not None and at + 1 < len(options) else len(options)
        options.insert(after, "disabled")
    rewritten = indent + " ".join(head + options)
    if hash_:
        rewritten += "  #" + comment.rstrip("\n")
    return rewritten


def set_servers(text, backend, changes):
    """changes: {server: {"weight": int or None, "disabled": bool or None}} -> new text.

    Raises ConfigError naming the backend or server that the file does not have.
    """
    lines = text.split("\n")
    seen = set()
    for index, be_name, server, line in list(_server_lines(lines)):
        if be_name == backend and server in changes:
            change = changes[server]
            lines[index] = _rewrite_line(line, change.get("weight"), change.get("disabled"))
            seen.add(server)
    missing = sorted(set(changes) - seen)
    if missing:
        raise ConfigError(f"the configuration has no server {', '.join(missing)} in backend {backend}")
    return "\n".join(lines)
