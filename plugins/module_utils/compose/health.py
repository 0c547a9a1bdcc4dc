# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Waiting until a project's services are healthy (or running, without a healthcheck).

Not `up --wait`: it breaks on one-shot containers and gives up on the first unhealthy probe in
some Compose versions. A container that exited, is restarting after a crash, or was declared
unhealthy fails at once, with its last healthcheck outputs and the tail of its logs.
"""

from __future__ import annotations

import time

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.parsers import health_outputs


class ServiceNotHealthy(SwitchyardError):
    """Services that did not become ready; failures says why, per container."""

    def __init__(self, msg, failures):
        super().__init__(msg, failures=failures)
        self.failures = failures


def container_verdict(container):
    """'ready', 'waiting' or 'failed' for one summarised container."""
    state, health = container["state"], container["health"]
    if state in ("exited", "dead") or (state == "restarting" and container["restart_count"] > 0):
        return "failed"
    if health == "unhealthy":
        return "failed"
    if state == "running" and health in (None, "healthy"):
        return "ready"
    return "waiting"


def wait_until_healthy(cli, services, timeout, poll=0.25, clock=time.monotonic, sleep=time.sleep):
    """Return the project's containers (all of them, as listed) once every one of services is ready; raise
    ServiceNotHealthy. A poll (docker ps and inspect, a few tens of ms) every 0.25 s: on average 0.125 s between
    Docker's verdict and ours - a recreate's outage waits for it."""
    deadline = clock() + timeout
    while True:
        listed = cli.containers()
        containers = [c for c in listed if c["service"] in services]
        verdicts = {c["id"]: container_verdict(c) for c in containers}
        missing = sorted(set(services) - {c["service"] for c in containers})
        failed = [c for c in containers if verdicts[c["id"]] == "failed"]
        if not failed and not missing and all(v == "ready" for v in verdicts.values()):
            return listed
        if failed or clock() >= deadline:
            bad = failed or [c for c in containers if verdicts[c["id"]] != "ready"]
            raise_not_healthy(cli, bad, missing, timeout, timed_out=not failed)
        sleep(poll)


def raise_not_healthy(cli, containers, missing, timeout, timed_out):
    inspected = {obj["Id"][:12]: obj for obj in cli.inspect([c["id"] for c in containers])} if containers else {}
    failures = []
    for c in containers:
        failures.append(
            {
                "service": c["service"],
                "container": c["name"],
                "state": c["state"],
                "health": c["health"],
                "exit_code": c["exit_code"],
                "restart_count": c["restart_count"],
                "health_log": health_outputs(inspected.get(c["id"], {})),
                "logs": cli.logs_tail(c["id"]),
            }
        )
    parts = [f"{f['service']} ({f['container']}: {f['state']}, health {f['health'] or 'none'})" for f in failures]
    parts += [f"{s} (no container)" for s in missing]
    why = f"not ready after {timeout} s" if timed_out else "failed"
    raise ServiceNotHealthy(f"service(s) {why}: {', '.join(parts)}", failures)
