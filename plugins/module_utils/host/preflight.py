# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight module: measure the Docker host in one call (two docker commands, statvfs, the
clock), judge the named checks, and read the LB's servers when the LB runs. Changes nothing."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.host.checks import FAIL, PASS, SKIP, check, judge
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer


class PreflightFailed(SwitchyardError):
    """One or more named checks failed; details carry every check."""


class PreflightManager:
    def __init__(self, module, runner=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.result = {"changed": False, "checks": []}

    def measure(self):
        docker = self.params["docker_cli"]
        info = self.runner.parsed([docker, "info", "--format", "{{json .}}"], "reading docker info", json.loads)
        compose = self.runner.parsed(
            [docker, "compose", "version", "--short"], "reading the Compose version", lambda out: out.strip()
        )
        root = info.get("DockerRootDir") or "/var/lib/docker"
        try:
            fs = os.statvfs(root)
        except OSError as exc:
            raise SwitchyardError(f"cannot measure the free space under Docker's data directory {root}: {exc}") from exc
        controller = self.params["controller_time"]
        return {
            "docker_version": info.get("ServerVersion"),
            "compose_version": compose,
            "docker_root": root,
            "free_bytes": fs.f_bavail * fs.f_frsize,
            "total_bytes": fs.f_blocks * fs.f_frsize,
            "clock_skew_s": None if controller is None else time.time() - controller,
        }

    def lb_check(self):
        """The LB's servers of every route, when the LB exists; a socket that does not answer fails."""
        options = self.params["lb"]
        if not options:
            return None, None
        lb = load_balancer(options, self.runner)
        lb.check_routes(self.params["routes"] or [])  # a name the LB cannot take is bad input, not "no answer"
        if not lb.exists():
            return check("lb", SKIP, None, None, "no LB yet (first release)"), None
        try:
            servers = {route: lb.servers(route) for route in self.params["routes"]}
        except SwitchyardError as exc:
            return check("lb", FAIL, None, None, f"the LB does not answer: {exc.msg}"), None
        return check("lb", PASS, sorted(servers), None, f"the LB answers for {', '.join(sorted(servers))}"), servers

    def run(self):
        measured = self.measure()
        self.result["facts"] = measured
        checks = judge(measured, self.params)
        lb, servers = self.lb_check()
        if lb:
            checks.append(lb)
        self.result["checks"] = checks
        self.result["lb_servers"] = servers or {}
        failed = [c for c in checks if c["status"] == FAIL]
        if failed:
            raise PreflightFailed("preflight failed: " + "; ".join(f"{c['name']}: {c['message']}" for c in failed))
        self.result["passed"] = [c["name"] for c in checks if c["status"] == PASS]
        return self.result
