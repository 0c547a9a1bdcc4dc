# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HAProxy as a LoadBalancer: the lb role's layout and names, and the weight changes of weights.py.

The lb role renders one backend be_<route> per route with one server <route>_<color> per color,
and keeps its files in one host directory: etc/haproxy.cfg (mounted as a directory, so renames
are seen), run/admin.sock (the admin-level Runtime API), run/master.sock (the master CLI) and
state/servers.state. When the admin socket is unreachable, a change falls back to a validated,
verified reload (weights in the configuration, states in the server-state file).
"""

from __future__ import annotations

import collections
import os

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    COLORS,
    LBError,
    LBUnreachable,
    LoadBalancer,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy import maintenance as page
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.canary import MAP_FILE, map_path, set_canary
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import iter_timed_lines, parse_lines
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.names import check_names
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import (
    RuntimeAPI,
    RuntimeAPIError,
    RuntimeAPIUnreachable,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.stats import snapshot
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.weights import WeightChange
from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import (
    ContainerLog,
    is_synthetic,
    request_target,
)

CONFIG_IN_CONTAINER = "/usr/local/etc/haproxy"


def backend_name(route):
    return f"be_{route}"


def server_name(route, color):
    return f"{route}_{color}"


class HAProxy(LoadBalancer):
    kind = "haproxy"

    def __init__(self, options, runner):
        self.runner = runner
        self.dir = options["dir"]
        self.container = options.get("container")
        # The docker client of the module that drives the LB, when it has one (preflight's docker_cli).
        self.docker = options.get("docker_cli") or "docker"
        self.timeout = options.get("timeout") or 5
        self.socket = os.path.join(self.dir, "run", "admin.sock")
        # The gate only reads: the lb role's user-level socket is enough, when it is there.
        self.status_socket = os.path.join(self.dir, "run", "status.sock")
        # The master CLI: it relays to the worker (@1) and answers across reloads.
        self.master_socket = os.path.join(self.dir, "run", "master.sock")
        self.config = os.path.join(self.dir, "etc", "haproxy.cfg")
        self.state_file = os.path.join(self.dir, "state", "servers.state")

    # -- names ---------------------------------------------------------------------------------
    def check_route(self, route):
        # be_<route> and <route>_<color> go into Runtime API commands and the configuration.
        check_names("routes", [route])

    def change(self, route, weights=None, states=None, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        """The WeightChange of one route (weights and states by color)."""
        self.check_route(route)
        params = {
            "socket": self.socket,
            "backend": backend_name(route),
            "weights": {server_name(route, c): w for c, w in (weights or {}).items()},
            "states": {server_name(route, c): s for c, s in (states or {}).items()},
            "require_up": True,
            "up_timeout": up_timeout,
            "drain_timeout": drain_timeout,
            "maint_after_drain": False,
            "persist": {"config": self.config, "state_file": self.state_file},
            "validate_command": (
                [self.docker, "exec", self.container, "haproxy", "-c", "-f", f"{CONFIG_IN_CONTAINER}/{{name}}"]
                if self.container
                else None
            ),
            # The admin socket gone: the same change through a validated, verified reload of the master.
            "reload": "fallback" if self.container else "never",
            "reload_command": [self.docker, "kill", "--signal", "USR2", self.container] if self.container else None,
            "verify_socket": self.master_socket,
            "verify_prefix": "@1 ",
            "timeout": self.timeout,
        }
        return WeightChange(params, self.runner, check_mode, guard=guard)

    @staticmethod
    def by_color(route, servers):
        """{server: view} -> {color: view} for this route's two colors (other servers are not ours)."""
        return {c: servers[server_name(route, c)] for c in COLORS if server_name(route, c) in servers}

    # -- the interface -------------------------------------------------------------------------
    def config_files(self, routes):
        return {
            "lb/haproxy.cfg": self.config,
            "lb/canary.map": map_path(self.dir),
            "lb/maintenance.map": page.map_path(self.dir),
        }

    def exists(self):
        return os.path.exists(self.socket)

    def control_level(self):
        # `show cli level` answers the level of the socket it is asked on: admin, operator or user.
        try:
            level = RuntimeAPI(self.socket, timeout=self.timeout).cli_level()
        except RuntimeAPIError as exc:
            raise LBUnreachable(exc.msg) from exc
        return {"endpoint": self.socket, "level": level, "admin": level == "admin"}

    def validate_config(self):
        # The file the running HAProxy reads, checked by that HAProxy's binary, as a change validates it.
        if not self.container:
            raise LBError("lb.container is needed to check the configuration (haproxy -c in the LB container)")
        args = [self.docker, "exec", self.container, "haproxy", "-c", "-f", f"{CONFIG_IN_CONTAINER}/haproxy.cfg"]
        rc, out, err = self.runner.run(args, f"checking the configuration in {self.container}", check=False)
        output = "\n".join(part.strip() for part in (err, out) if part.strip())
        if rc != 0 and ("Error response from daemon" in output or "No such container" in output):
            raise LBUnreachable(f"cannot run haproxy -c in {self.container}: {output[-500:]}")
        # HAProxy says what is wrong in its [ALERT] lines (a NOTICE and WARNINGs come first).
        alerts = [line for line in output.splitlines() if "[ALERT]" in line]
        return {"file": self.config, "valid": rc == 0, "rc": rc, "output": ("\n".join(alerts) or output)[-1500:]}

    def servers(self, route):
        change = self.change(route)
        try:
            return self.by_color(route, change.read())
        except RuntimeAPIUnreachable:
            # Read through the master CLI when the admin socket is gone.
            relay = RuntimeAPI(self.master_socket, timeout=self.timeout, prefix="@1 ")
            return self.by_color(route, change.read(relay))

    def shift(self, route, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        change = self.change(route, weights, states, up_timeout, drain_timeout, check_mode, guard)
        try:
            result = change.run()
        finally:
            self.last = change.result
        out = {
            "route": route,
            "changed": result["changed"],
            "method": result.get("method"),
            "commands": result.get("commands", []),
        }
        if result.get("socket_error"):
            out["socket_error"] = result["socket_error"]
        for key in ("before", "after"):
            if key in result:
                out[key] = self.by_color(route, result[key])
        if "shares" in result:
            out["shares"] = {c: result["shares"][server_name(route, c)] for c in out.get("after", {})}
        if "diff" in result:
            out["diff"] = result["diff"]
        if "timings" in result:
            out["timings"] = result["timings"]
        return out

    def set_canary(self, color, check_mode=False, guard=None):
        # etc/canary.map, and HAProxy's copy through the admin socket (or the master CLI relaying to the worker).
        apis = [
            RuntimeAPI(self.socket, timeout=self.timeout),
            RuntimeAPI(self.master_socket, timeout=self.timeout, prefix="@1 "),
        ]
        map_id = f"{CONFIG_IN_CONTAINER}/{MAP_FILE}"
        return set_canary(map_path(self.dir), map_id, color, apis, check_mode=check_mode, guard=guard)

    def apis(self):
        """The admin socket, then the master CLI relaying to the worker (the socket removed by hand)."""
        return [
            RuntimeAPI(self.socket, timeout=self.timeout),
            RuntimeAPI(self.master_socket, timeout=self.timeout, prefix="@1 "),
        ]

    def log_dropped(self):
        for api in self.apis():
            try:
                value = api.info().get("DroppedLogs")
            except RuntimeAPIError:
                continue
            return int(value) if value and value.isdigit() else None
        return None

    def maintenance(self, route):
        self.check_route(route)
        return page.read_maintenance(self.apis(), f"{CONFIG_IN_CONTAINER}/{page.MAP_FILE}", route)

    def set_maintenance(self, route, enabled, check_mode=False, guard=None):
        # etc/maintenance.map, and HAProxy's copy through the Runtime API: no reload.
        self.check_route(route)
        map_id = f"{CONFIG_IN_CONTAINER}/{page.MAP_FILE}"
        return page.set_maintenance(
            page.map_path(self.dir), map_id, route, enabled, self.apis(), check_mode=check_mode, guard=guard
        )

    def counters(self, route, colors):
        self.check_route(route)
        readable = self.status_socket if os.path.exists(self.status_socket) else self.socket
        servers = [server_name(route, c) for c in colors]
        try:
            taken = snapshot(RuntimeAPI(readable, timeout=self.timeout), backend_name(route), servers)
        except RuntimeAPIUnreachable as exc:
            # The stats sockets are gone (removed by hand): the master CLI relays to the worker.
            try:
                relay = RuntimeAPI(self.master_socket, timeout=self.timeout, prefix="@1 ")
                taken = snapshot(relay, backend_name(route), servers)
            except RuntimeAPIError:
                raise LBUnreachable(exc.msg) from exc
        except RuntimeAPIError as exc:
            raise LBUnreachable(exc.msg) from exc
        return {**taken, "servers": {c: taken["servers"][server_name(route, c)] for c in colors}}

    def request_samples(self, route, since, until):
        self.check_route(route)
        if not self.container:
            raise LBError("lb.container is needed to read HAProxy's request log (docker logs of the LB container)")
        _rc, out, err = self.runner.run(
            [self.docker, "logs", "--since", since.isoformat(), "--until", until.isoformat(), self.container],
            f"reading the logs of {self.container}",
        )
        samples = parse_lines((out + "\n" + err).splitlines(), backend_name(route))
        return {c: samples[server_name(route, c)] for c in COLORS if server_name(route, c) in samples}

    def request_log(self, routes, since, until, max_records=None):
        """The records of routes over [since, until], read from `docker logs` as a stream: memory is bounded
        by max_records (the latest kept; self.request_log_dropped counts the others), never by the log's size."""
        self.check_routes(routes)
        if not self.container:
            raise LBError("lb.container is needed to read HAProxy's request log (docker logs of the LB container)")
        names = {(backend_name(r), server_name(r, c)): (r, c) for r in routes for c in COLORS}
        records = collections.deque(maxlen=max_records or None)
        seen = 0
        # stderr into stdout: HAProxy's lines on either come in one stream (sorted by time below). Real traffic
        # only: the gate's synthetic requests (marked in the request line) are its own sample.
        with ContainerLog(self.runner, self.docker, self.container, since, until) as log:
            lines = (
                line for line in log.lines(keep_other=lambda line: not line.startswith("20")) if not is_synthetic(line)
            )
            for at, backend, server, status, latency in iter_timed_lines(lines, [backend_name(r) for r in routes]):
                route_color = names.get((backend, server))
                if route_color:
                    seen += 1
                    records.append((at, *route_color, status, latency))
        self.request_log_dropped = seen - len(records)
        return sorted(records, key=lambda record: record[0])

    def request_records(self, routes, since, until):
        self.check_routes(routes)
        if not self.container:
            raise LBError("lb.container is needed to read HAProxy's request log (docker logs of the LB container)")
        backends = {backend_name(r): r for r in routes}
        colors = {server_name(r, c): c for r in routes for c in COLORS}
        records = []
        with ContainerLog(self.runner, self.docker, self.container, since, until) as log:
            for line in log.lines(keep_other=lambda line: not line.startswith("20")):
                for at, backend, server, status, _latency in iter_timed_lines([line], backends):
                    # <NOSRV>: HAProxy answered itself (no server UP with weight) - color None.
                    records.append((at, backends[backend], colors.get(server), status, request_target(line)))
        return sorted(records, key=lambda record: record[0])
