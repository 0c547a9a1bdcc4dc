# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether the color a drill sends traffic to is warm: its containers running and healthy, running the digests
the ledger recorded for it, and the LB ready to send it requests. A drill never starts a color (a rollback
would): a cold color is what the drill is there to find, and it is refused before anything moves."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.compose.health import container_verdict
from ansible_collections.switchyard.release.plugins.module_utils.compose.plan import images_not_matching


def container_problems(project, containers, images):
    """Why the project's containers are not warm ([] when they are)."""
    if not containers:
        return [f"project {project} has no containers (removed, or never deployed on this host)"]
    problems = []
    services = {c["service"] for c in containers}
    for service in sorted(set(images or {}) - services):
        problems.append(f"service {service} of {project} has no container")
    for container in containers:
        verdict = container_verdict(container)
        if verdict != "ready":
            health = f", {container['health']}" if container.get("health") else ""
            problems.append(f"{container['name']} is {container['state']}{health}, not running and healthy")
    problems.extend(images_not_matching(containers, images))
    return problems


def lb_problems(color, servers):
    """Why the LB cannot send color requests now ([] when it can): on every route, the color is UP - or in maint,
    where the LB does not check it, and the shift waits until it is UP (counted in the RTO, as in a rollback)."""
    problems = []
    for route, by_color in sorted(servers.items()):
        view = by_color.get(color)
        if not view:
            problems.append(f"route {route} has no server for {color}")
        elif view.get("state") != "maint" and not view.get("up"):
            problems.append(f"route {route}: the LB shows {color} {view.get('status') or 'DOWN'}")
    return problems
