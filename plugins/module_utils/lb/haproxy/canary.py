# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The canary map: which color `X-Canary: 1` reaches (the candidate of the current release).

The lb role's configuration looks the header up in etc/canary.map (`1 <color>`). A release sets its
candidate there twice: in the file, so a reload or restart keeps it, and in HAProxy's copy through the
Runtime API (`set map`), so it applies at once without a reload (a reload would reset the counters the
canary gate reads, and start a worker for every release).
"""

from __future__ import annotations

import os

from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS, LBError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import (
    RuntimeAPIError,
    RuntimeAPIUnreachable,
)

MAP_FILE = "canary.map"
KEY = "1"


class CanaryMapError(LBError):
    """The canary map is missing, or HAProxy does not have it."""


def map_entries(text):
    """{key: value} of a map file (HAProxy's format: `key value` lines, # comments)."""
    entries = {}
    for line in text.splitlines():
        code = line.strip()
        if not code or code.startswith("#"):
            continue
        key, _space, value = code.partition(" ")
        entries[key] = value.strip()
    return entries


def with_color(text, color):
    """The map file's text with `1 <color>`: the key's line rewritten in place (comments kept), or added."""
    return with_entry(text, KEY, color)


def with_entry(text, key, value):
    """The map file's text with `<key> <value>`: the key's line rewritten in place (comments kept), or added."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        code = line.strip()
        if code and not code.startswith("#") and code.partition(" ")[0] == key:
            lines[index] = f"{key} {value}"
            break
    else:
        lines.append(f"{key} {value}")
    return "\n".join(lines) + "\n"


def parse_show_map(output):
    """{key: value} of `show map <file>` (`0x55d5... key value` per entry); CanaryMapError on an error message."""
    entries = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split(None, 2)
        if len(fields) < 3 or not fields[0].startswith("0x"):
            raise CanaryMapError(f"HAProxy answered {output.strip()!r}")
        entries[fields[1]] = fields[2].strip()
    return entries


def set_canary(path, map_id, color, apis, check_mode=False, guard=None):
    """Make `X-Canary: 1` reach color: the map file at path, then the map map_id in HAProxy, through the first
    of apis that answers (the admin socket, then the master CLI); read back. Returns {changed, before, after,
    file_before, commands}."""
    if color not in COLORS:
        raise CanaryMapError(f"canary={color!r}: use one of {', '.join(COLORS)}")
    text = read_text(path)
    if text is None:
        raise CanaryMapError(f"{path} is missing: run the lb role, which writes the canary map (and reads it in)")
    file_before = map_entries(text).get(KEY)
    api, live = None, None
    errors = []
    for candidate in apis:
        try:
            live = parse_show_map(candidate.query(f"show map {map_id}"))
            api = candidate
            break
        except RuntimeAPIUnreachable as exc:
            errors.append(exc.msg)
        except CanaryMapError as exc:
            raise CanaryMapError(
                f"HAProxy has no canary map {map_id} ({exc.msg}): its configuration predates it; run the lb role"
            ) from exc
    if api is None:
        raise LBError(f"cannot set the canary map: {'; '.join(errors)}")
    before = live.get(KEY)
    command = f"{'set' if before is not None else 'add'} map {map_id} {KEY} {color}"
    result = {
        "changed": before != color or file_before != color,
        "before": before,
        "after": color,
        "file_before": file_before,
        "commands": [command] if before != color else [],
    }
    if check_mode or not result["changed"]:
        return result
    if guard:
        guard()
    try:
        if file_before != color:
            # First the file: a reload between the two steps must not bring the old color back.
            write_atomically(path, with_color(text, color), like=path)
        if before != color:
            ((_command, message),) = api.execute([command])
            if message:
                raise CanaryMapError(f"HAProxy refused {command!r}: {message}")
        seen = parse_show_map(api.query(f"show map {map_id}")).get(KEY)
    except OSError as exc:
        raise CanaryMapError(f"cannot write the canary map {path}: {exc.strerror or exc}") from exc
    except RuntimeAPIError as exc:
        raise CanaryMapError(f"{exc.msg} (the canary map {path} says {color}; a reload reads it)") from exc
    if seen != color:
        raise CanaryMapError(f"HAProxy shows `X-Canary: 1` -> {seen} after {command!r}")
    return result


def map_path(lb_dir):
    return os.path.join(lb_dir, "etc", MAP_FILE)
