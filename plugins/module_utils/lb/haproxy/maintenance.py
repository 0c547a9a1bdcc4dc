# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance map: which routes answer the maintenance page (a recreate's outage).

Each backend be_<route> of the lb role's configuration starts with
`http-request return status 503 ... file maintenance.html hdr Retry-After <s> if { str(<route>),map(maintenance.map)
-m str on }`. Turning it on or off is one `set map` on the Runtime API - no reload (a reload would reset the counters
and start a worker) - after the same line in etc/maintenance.map, so a reload or a restart keeps it: the canary
map's way (canary.py).
"""

from __future__ import annotations

import os

from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.canary import (
    CanaryMapError,
    map_entries,
    parse_show_map,
    with_entry,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import (
    RuntimeAPIError,
    RuntimeAPIUnreachable,
)

MAP_FILE = "maintenance.map"
PAGE_FILE = "maintenance.html"
ON, OFF = "on", "off"


class MaintenanceMapError(LBError):
    """The maintenance map is missing, or HAProxy does not have it."""


def map_path(lb_dir):
    return os.path.join(lb_dir, "etc", MAP_FILE)


def live_map(apis, map_id):
    """(the first api that answers, {route: on|off} of HAProxy's copy of the map)."""
    errors = []
    for api in apis:
        try:
            return api, parse_show_map(api.query(f"show map {map_id}"))
        except RuntimeAPIUnreachable as exc:
            errors.append(exc.msg)
        except CanaryMapError as exc:
            raise MaintenanceMapError(
                f"HAProxy has no maintenance map {map_id} ({exc.msg}): its configuration predates the maintenance "
                "page; run the lb role (it adds it, with a verified reload)"
            ) from exc
    raise LBError(f"cannot read the maintenance map: {'; '.join(errors)}")


def read_maintenance(apis, map_id, route):
    """Whether HAProxy answers the page on route now (its copy of the map: what it runs)."""
    _api, live = live_map(apis, map_id)
    return live.get(route) == ON


def set_maintenance(path, map_id, route, enabled, apis, check_mode=False, guard=None):
    """The page of route on or off: the map file at path, then HAProxy's copy (map_id) through the first of apis that
    answers; read back. Returns {route, changed, before, after, file_before, commands}."""
    value = ON if enabled else OFF
    text = read_text(path)
    if text is None:
        raise MaintenanceMapError(f"{path} is missing: run the lb role, which writes the maintenance map")
    file_before = map_entries(text).get(route)
    api, live = live_map(apis, map_id)
    before = live.get(route)
    file_ok = (file_before == ON) == enabled
    live_ok = (before == ON) == enabled
    command = f"{'set' if before is not None else 'add'} map {map_id} {route} {value}"
    result = {
        "route": route,
        "changed": not (file_ok and live_ok),
        "before": before == ON,
        "after": enabled,
        "file_before": file_before == ON,
        "commands": [] if live_ok else [command],
    }
    if check_mode or not result["changed"]:
        return result
    if guard:
        guard()
    try:
        if not file_ok:
            # First the file: a reload between the two steps must not bring the old state back.
            write_atomically(path, with_entry(text, route, value), like=path)
        if not live_ok:
            ((_command, message),) = api.execute([command])
            if message:
                raise MaintenanceMapError(f"HAProxy refused {command!r}: {message}")
        seen = parse_show_map(api.query(f"show map {map_id}")).get(route)
    except OSError as exc:
        raise MaintenanceMapError(f"cannot write the maintenance map {path}: {exc.strerror or exc}") from exc
    except RuntimeAPIError as exc:
        raise MaintenanceMapError(f"{exc.msg} (the maintenance map {path} says {value}; a reload reads it)") from exc
    if (seen == ON) != enabled:
        raise MaintenanceMapError(f"HAProxy shows `{route} {seen}` in its maintenance map after {command!r}")
    return result
