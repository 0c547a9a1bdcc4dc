# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_plan, fleet_dropped and fleet_summary: the hosts of a fleet (module_utils/release/fleet.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.release import fleet


def fleet_plan(mode, batch, play_hosts, done=(), plans=None, serial=None):
    try:
        return fleet.plan(mode, batch, play_hosts, done, plans, serial)
    except InvalidParameters as exc:
        raise AnsibleFilterError(exc.msg) from None


def fleet_dropped(hosts, hostvars, point):
    marks = {}
    for host in hosts:
        try:
            marks[host] = hostvars[host].get("__switchyard_fleet_mark")
        except KeyError:
            marks[host] = None
    return fleet.dropped(hosts, marks, point)


def fleet_summary(per_host, app="the application"):
    if not isinstance(per_host, dict):
        raise AnsibleFilterError(
            f"fleet_summary: expected host -> live color and version, got {type(per_host).__name__}"
        )
    return fleet.summary(app, per_host)


class FilterModule:
    def filters(self):
        return {"fleet_plan": fleet_plan, "fleet_dropped": fleet_dropped, "fleet_summary": fleet_summary}
