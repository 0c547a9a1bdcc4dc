# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nginx as a LoadBalancer: weights and the canary candidate in etc/routes.conf, applied by a validated,
verified, graceful reload.

The lb role keeps its files in one host directory, mounted as a directory at /etc/nginx/switchyard (so a
renamed file is seen at once): etc/nginx.conf (the role's) includes etc/routes.conf (rendered from its own
state line by config.py). A change, under a lock (etc/.switchyard.lock: two writers never lose each other's
change), writes routes.conf atomically (temp file + rename in etc/), runs `nginx -t` in the container, reloads
(`nginx -s reload`: the old workers finish their requests) and waits until the internal listener answers the new
file's generation - only new workers know it. Any failure after the write (Nginx refusing the file, the lease
lost, the container gone, the generation never served) puts the previous file back, and reloads it again when a
reload was sent, so routes.conf stays what Nginx serves. What is read back is the file, compared with the
generation Nginx answers: a file Nginx has not loaded is reported (`loaded: false`) and the next shift reloads it.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import secrets
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    COLORS,
    LBError,
    LBUnreachable,
    LoadBalancer,
    shares,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx import config
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.log import iter_timed_lines, parse_lines
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.probe import (
    TOOLS,
    TOOLS_CHECK,
    parse_probe,
    probe_args,
    status,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import (
    ContainerLog,
    is_synthetic,
    request_target,
)

CONFIG_IN_CONTAINER = "/etc/nginx/switchyard"
NGINX = ["nginx", "-e", "stderr", "-c", f"{CONFIG_IN_CONTAINER}/{config.MAIN_FILE}"]
DAEMON_ERRORS = ("Error response from daemon", "No such container", "is not running", "Cannot connect")
LOCK_FILE = ".switchyard.lock"
LOCK_WAIT = 120  # seconds; a holder takes at most up_timeout + two reloads' verification


def new_generation():
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def server_text(servers):
    return "".join(f"{c}: weight {s['weight']}, {s['state']}\n" for c, s in sorted(servers.items()))


class Nginx(LoadBalancer):
    kind = "nginx"

    def __init__(self, options, runner):
        self.runner = runner
        self.dir = options["dir"]
        self.container = options.get("container")
        if not self.container:
            raise InvalidParameters(
                "lb.container is required for kind nginx: changes are validated, reloaded and verified in the "
                "LB container (docker exec <container> nginx ...), such as shop-lb-nginx-1"
            )
        self.docker = options.get("docker_cli") or "docker"
        self.timeout = options.get("timeout") or 5
        self.etc = os.path.join(self.dir, "etc")
        self.path = os.path.join(self.etc, config.FILE)
        self.main = os.path.join(self.etc, config.MAIN_FILE)
        self.lock_path = os.path.join(self.etc, LOCK_FILE)
        self.lock_depth = 0
        self.serving = None  # the generation Nginx answered at the last probe

    @contextlib.contextmanager
    def locked(self):
        """The writers' lock (flock on etc/.switchyard.lock) around read, write, validate, reload and verify; taken
        once per backend (nested calls share it)."""
        if self.lock_depth:
            self.lock_depth += 1
            try:
                yield
            finally:
                self.lock_depth -= 1
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LBError(f"cannot open the lock {self.lock_path}: {exc}") from exc
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LBError(
                            f"another writer of {self.path} has held {self.lock_path} for {LOCK_WAIT} s"
                        ) from None
                    time.sleep(0.05)
            self.lock_depth = 1
            try:
                yield
            finally:
                self.lock_depth = 0
        finally:
            os.close(fd)  # releases the lock

    # -- the file --------------------------------------------------------------------------------
    def check_route(self, route):
        config.check_route(route)

    def read_state(self):
        text = read_text(self.path)
        if text is None:
            raise LBError(f"{self.path} is missing: run the lb role (switchyard_lb_kind: nginx) first")
        return text, config.parse(text)

    def exec(self, args, what, check=False):
        rc, out, err = self.runner.run([self.docker, "exec", self.container, *args], what, check=False)
        said = "\n".join(part.strip() for part in (err, out) if part.strip())
        if rc != 0 and any(marker in said for marker in DAEMON_ERRORS):
            raise LBUnreachable(f"cannot run {args[0]} in {self.container}: {said[-500:]}")
        if check and rc != 0:
            raise LBError(f"{what} failed in {self.container} (rc={rc}): {said[-1500:]}", rc=rc)
        return rc, said

    def nginx_test(self):
        return self.exec([*NGINX, "-t"], f"checking the Nginx configuration in {self.container}")

    def probe(self, route):
        """({color: {code, addresses, sessions}}, generation Nginx answers or None)."""
        rc, out, err = self.runner.run(
            probe_args(self.docker, self.container, route["name"], route["port"], route["health_path"]),
            f"probing the colors of route {route['name']} from {self.container}",
            check=False,
        )
        if rc != 0:
            said = (err or out).strip()[-500:]
            raise LBUnreachable(f"cannot probe the colors from {self.container} (rc={rc}): {said}")
        return parse_probe(out, route["port"])

    def view(self, route, generation, weights=None, states=None):
        """{color: {weight, state, up, status, sessions, addresses, check, loaded}}: weight and state as the file
        holds them (or as given), health and sessions as seen now from the LB container; loaded: whether Nginx
        answers the file's generation (false: Nginx serves another file than this one - the next shift reloads)."""
        seen, serving = self.probe(route)
        self.serving = serving
        out = {}
        for color in COLORS:
            state = (states or route["states"])[color]
            up, shown, check = status(state, seen[color]["code"])
            out[color] = {
                "weight": (weights or route["weights"])[color],
                "state": state,
                "up": up,
                "status": shown,
                "sessions": seen[color]["sessions"],
                "addresses": seen[color]["addresses"],
                "check": check,
                "loaded": serving == generation,
            }
        return out

    def apply(self, text_before, state, guard):
        """Write state's file, validate it, reload, verify (under the lock, the caller's). Any failure after the
        write puts text_before back - and reloads and verifies it when a reload was sent - before it is raised."""
        state["generation"] = new_generation()
        text_after = config.render(state)
        timings = {}
        if guard:
            guard()
        started = time.monotonic()
        write_atomically(self.path, text_after, mode=0o640, like=self.path)
        reloading = False
        try:
            rc, said = self.nginx_test()
            if rc != 0:
                errors = [line for line in said.splitlines() if "[emerg]" in line or "[alert]" in line] or [said]
                raise LBError(f"nginx -t refused the new configuration: {' '.join(errors)[-1500:]}", rc=rc)
            timings["validate_ms"] = round((time.monotonic() - started) * 1000, 1)
            if guard:
                guard()
            reloading = True  # from here Nginx may have the new file, whatever the exec says
            rc, said = self.exec([*NGINX, "-s", "reload"], f"reloading Nginx in {self.container}")
            if rc != 0:
                raise LBError(f"nginx -s reload failed (rc={rc}): {said[-1500:]}")
            self.wait_generation(state["generation"])
        except BaseException as exc:
            note = self.restore(text_before, reloading)
            if isinstance(exc, SwitchyardError):
                exc.msg = f"{exc.msg}; {note}"
                exc.args = (exc.msg,)
            raise
        timings["reload_ms"] = round((time.monotonic() - started) * 1000, 1)
        return text_after, timings

    def restore(self, text_before, reloaded):
        """Put text_before back after a failed change; when a reload was sent, reload and verify it. Returns what
        happened, for the error's message."""
        write_atomically(self.path, text_before, mode=0o640, like=self.path)
        if not reloaded:
            return f"the previous {config.FILE} is back in place and Nginx still runs it (not reloaded)"
        previous = config.parse(text_before)["generation"]
        try:
            rc, said = self.exec([*NGINX, "-s", "reload"], f"reloading the previous file in {self.container}")
            if rc != 0:
                raise LBError(f"nginx -s reload failed (rc={rc}): {said[-500:]}")
            self.wait_generation(previous)
        except LBError as exc:
            return (
                f"the previous {config.FILE} is back in place, but reloading it failed too ({exc.msg}): Nginx loads "
                f"it when it (re)starts, and the next shift reloads it (servers show loaded: false until then)"
            )
        return f"the previous {config.FILE} is back in place and Nginx reloaded it (generation {previous})"

    def loaded_generation(self):
        rc, said = self.exec(
            ["curl", "-s", "-m", "2", f"http://127.0.0.1:{config.INTERNAL_PORT}{config.GENERATION_PATH}"],
            "reading the generation Nginx serves",
        )
        return said.strip() if rc == 0 else None

    def wait_generation(self, generation):
        """Until the workers that answer serve generation: the old ones no longer accept connections."""
        deadline = time.monotonic() + max(self.timeout, 10)
        seen = None
        while True:
            seen = self.loaded_generation()
            if seen == generation:
                return
            if time.monotonic() >= deadline:
                raise LBError(
                    f"Nginx was reloaded with generation {generation}, but its workers still answer {seen!r} after "
                    f"{max(self.timeout, 10)} s (see docker logs {self.container})"
                )
            time.sleep(0.1)

    # -- the interface -------------------------------------------------------------------------
    def config_files(self, routes):
        return {f"lb/{config.MAIN_FILE}": self.main, f"lb/{config.FILE}": self.path}

    def exists(self):
        return os.path.exists(self.path)

    def control_level(self):
        # "admin" for Nginx: its container runs and has the tools the backend runs there, its configuration can be
        # validated there, and etc/ is ours to write - all a change needs (there is no control socket).
        self.check_tools()
        rc, said = self.nginx_test()
        writable = os.access(self.etc, os.W_OK)
        level = "admin" if rc == 0 and writable else ("read-only" if rc == 0 else "invalid-config")
        return {"endpoint": f"docker exec {self.container} nginx", "level": level, "admin": level == "admin"}

    def check_tools(self):
        """LBError naming what the LB image lacks of TOOLS (sh, cat, getent, curl: see docs/nginx_upstream.md)."""
        rc, said = self.exec(["sh", "-c", TOOLS_CHECK], f"looking for {', '.join(TOOLS)} in {self.container}")
        missing = [line.split()[1] for line in said.splitlines() if line.startswith("missing ")]
        if rc in (126, 127) and "executable file not found" in said:
            missing = ["sh"]
        if missing or rc != 0 or "ok" not in said.split():
            raise LBError(
                f"the LB container {self.container} lacks {', '.join(missing) or 'a tool'} (rc={rc}: {said[-300:]}): "
                f"the Nginx backend runs {', '.join(TOOLS)} in it (docker exec) - use an image that has them, such "
                "as the testbed's (see docs/nginx_upstream.md)"
            )

    def validate_config(self):
        rc, said = self.nginx_test()
        errors = [line for line in said.splitlines() if "[emerg]" in line or "[alert]" in line]
        return {"file": self.main, "valid": rc == 0, "rc": rc, "output": ("\n".join(errors) or said)[-1500:]}

    def servers(self, route):
        self.check_route(route)
        _text, state = self.read_state()
        return self.view(config.find_route(state, route), state["generation"])

    def shift(self, route, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        self.check_route(route)
        for color, weight in (weights or {}).items():
            self.check_color(f"weights.{color}", color)
            config.check_weight(f"weights.{color}", weight)
        for color, state in (states or {}).items():
            self.check_color(f"states.{color}", color)
            config.check_color_state(f"states.{color}", state)
        if check_mode:
            return self.shift_locked(route, weights, states, up_timeout, drain_timeout, True, guard)
        with self.locked():
            return self.shift_locked(route, weights, states, up_timeout, drain_timeout, False, guard)

    def shift_locked(self, route, weights, states, up_timeout, drain_timeout, check_mode, guard):
        text, state = self.read_state()
        entry = config.find_route(state, route)
        before = self.view(entry, state["generation"])
        unloaded = self.unloaded(state["generation"], before)
        target = {
            c: {
                "weight": (weights or {}).get(c, entry["weights"][c]),
                "state": (states or {}).get(c, entry["states"][c]),
            }
            for c in COLORS
        }
        commands = self.plan(route, before, target)
        if unloaded:
            commands.append(unloaded)
        out = {"route": route, "changed": bool(commands), "method": "reload", "commands": commands, "before": before}
        out["diff"] = [
            {
                "before_header": f"{route} servers",
                "after_header": f"{route} servers",
                "before": server_text(before),
                "after": server_text(target),
            }
        ]
        if not commands:
            out.update(after=before, shares=shares(before), commands=[])
            return out
        before = self.refuse_unsafe(route, entry, state["generation"], before, target, up_timeout, check_mode)
        new_entry = {
            **entry,
            "weights": {c: t["weight"] for c, t in target.items()},
            "states": {c: t["state"] for c, t in target.items()},
        }
        new_state = {**state, "routes": [new_entry if r["name"] == route else r for r in state["routes"]]}
        if check_mode:
            after = {c: {**before[c], **target[c]} for c in COLORS}
            for c in COLORS:
                code = 200 if before[c]["check"] == "L7OK" else 0
                after[c]["up"], after[c]["status"], _check = status(target[c]["state"], code)
            planned = config.render({**new_state, "generation": "next"})
            out["diff"].append(
                {"before_header": self.path, "after_header": self.path, "before": text, "after": planned}
            )
            for c in COLORS:
                after[c]["loaded"] = True
            out.update(after=after, shares=shares(after))
            return out
        text_after, timings = self.apply(text, new_state, guard)
        out["diff"].append({"before_header": self.path, "after_header": self.path, "before": text, "after": text_after})
        drained = [c for c in COLORS if target[c]["state"] in ("drain", "maint") and before[c]["state"] == "ready"]
        after = self.view(new_entry, new_state["generation"])
        if drained and drain_timeout > 0:
            started = time.monotonic()
            while any(after[c]["sessions"] for c in drained) and time.monotonic() - started < drain_timeout:
                time.sleep(0.25)
                after = self.view(new_entry, new_state["generation"])
            out["drain"] = {
                "waited": round(time.monotonic() - started, 3),
                "sessions_left": {c: after[c]["sessions"] for c in drained if after[c]["sessions"]},
            }
        out.update(after=after, shares=shares(after), timings=timings, generation=new_state["generation"])
        return out

    def unloaded(self, generation, before):
        """None when Nginx serves the file's generation; else the command that reloads it (a change whose write
        Nginx never loaded: the file is not what Nginx serves). A generation seen differently is read again for a
        moment (Nginx starting, workers being replaced) before it is judged."""
        deadline = time.monotonic() + 2
        seen = self.serving
        while seen != generation and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.loaded_generation()
        if seen == generation:
            for view in before.values():
                view["loaded"] = True
            return None
        return f"reload {config.FILE} (generation {generation}; Nginx serves {seen or 'none'})"

    @staticmethod
    def check_color(where, color):
        if color not in COLORS:
            raise InvalidParameters(f"{where}: unknown color {color!r}; use {', '.join(COLORS)}")

    @staticmethod
    def plan(route, before, target):
        """What changes, in HAProxy's order (lift, raise, lower, drain, maint); one reload applies it all at once."""
        lift, raise_, lower, drain, maint = [], [], [], [], []
        for c in COLORS:
            was, want = before[c], target[c]
            if want["state"] == "ready" and was["state"] != "ready":
                lift.append(f"set {route}/{c} state ready")
            if want["weight"] > was["weight"]:
                raise_.append(f"set {route}/{c} weight {want['weight']}")
            elif want["weight"] < was["weight"]:
                lower.append(f"set {route}/{c} weight {want['weight']}")
            if want["state"] == "drain" and was["state"] != "drain":
                drain.append(f"set {route}/{c} state drain")
            if want["state"] == "maint" and was["state"] != "maint":
                maint.append(f"set {route}/{c} state maint")
        return lift + raise_ + lower + drain + maint

    def refuse_unsafe(self, route, entry, generation, before, target, up_timeout, check_mode):
        """Refuse new traffic for a color whose health path does not answer 200 (a color leaving drain or maint is
        waited for, up to up_timeout) and a route left without a healthy color with weight. Returns the latest
        view."""
        deadline = time.monotonic() + (0 if check_mode else up_timeout)
        while True:
            gaining = [
                c
                for c in COLORS
                if target[c]["weight"] > 0
                and target[c]["state"] == "ready"
                and (target[c]["weight"] > before[c]["weight"] or before[c]["state"] != "ready")
                and before[c]["check"] != "L7OK"
            ]
            if not gaining:
                break
            if all(before[c]["state"] != "ready" for c in gaining) and time.monotonic() < deadline:
                time.sleep(0.5)
                before = self.view(entry, generation)
                continue
            color = gaining[0]
            raise LBError(
                f"weights.{color}: route {route}, color {color} is {before[color]['status']} ({route}-{color} "
                f"answers no 200 at its health path from {self.container}); refusing to send it traffic",
                after=before,
            )
        effective = sum(
            t["weight"] for c, t in target.items() if t["state"] == "ready" and before[c]["check"] == "L7OK"
        )
        if effective == 0:
            raise LBError(
                f"route {route} would have zero total weight on its UP colors: "
                f"{ {c: t['weight'] for c, t in target.items()} }; refusing to leave it without capacity"
            )
        return before

    def reload(self, check_mode=False, guard=None):
        """A validated, verified reload with the file as it is (a new generation): the lb role's, after it wrote
        a new nginx.conf into a running container."""
        result = {"changed": True, "method": "reload", "commands": ["nginx -t", "nginx -s reload"]}
        if check_mode:
            self.read_state()
            return result
        with self.locked():
            text, state = self.read_state()
            _text, result["timings"] = self.apply(text, state, guard)
            result["generation"] = config.parse(read_text(self.path))["generation"]
        return result

    def maintenance(self, route):
        # The file's flag, when Nginx serves that file (its generation): what the workers answer.
        self.check_route(route)
        _text, state = self.read_state()
        entry = config.find_route(state, route)
        if self.loaded_generation() != state["generation"]:
            raise LBError(
                f"Nginx does not serve {self.path} (generation {state['generation']}): whether route {route} is in "
                "maintenance cannot be read back; the next change reloads it"
            )
        return bool(entry.get("maintenance"))

    def set_maintenance(self, route, enabled, check_mode=False, guard=None):
        self.check_route(route)
        if check_mode:
            return self.set_maintenance_locked(route, enabled, True, guard)
        with self.locked():
            return self.set_maintenance_locked(route, enabled, False, guard)

    def set_maintenance_locked(self, route, enabled, check_mode, guard):
        text, state = self.read_state()
        entry = config.find_route(state, route)
        before = bool(entry.get("maintenance"))
        loaded = self.loaded_generation() == state["generation"]
        result = {"route": route, "changed": before != enabled or not loaded, "before": before, "after": enabled}
        result["commands"] = (
            [f"set {route} maintenance {'on' if enabled else 'off'}", "nginx -t", "nginx -s reload"]
            if result["changed"]
            else []
        )
        if check_mode or not result["changed"]:
            return result
        new_state = {
            **state,
            "routes": [{**r, "maintenance": enabled} if r["name"] == route else r for r in state["routes"]],
        }
        _text, result["timings"] = self.apply(text, new_state, guard)
        seen = config.find_route(config.parse(read_text(self.path)), route)
        if bool(seen.get("maintenance")) != enabled:
            raise LBError(f"{self.path} shows route {route} maintenance {seen.get('maintenance')} after the change")
        return result

    def set_canary(self, color, check_mode=False, guard=None):
        if color not in COLORS:
            raise InvalidParameters(f"canary={color!r}: use one of {', '.join(COLORS)}")
        if check_mode:
            return self.set_canary_locked(color, True, guard)
        with self.locked():
            return self.set_canary_locked(color, False, guard)

    def set_canary_locked(self, color, check_mode, guard):
        text, state = self.read_state()
        before = state.get("canary")
        result = {"changed": before != color, "before": before, "after": color, "file_before": before}
        result["commands"] = [f"set canary {color}", "nginx -t", "nginx -s reload"] if result["changed"] else []
        if check_mode or not result["changed"]:
            return result
        _text, timings = self.apply(text, {**state, "canary": color}, guard)
        result["timings"] = timings
        seen = config.parse(read_text(self.path)).get("canary")
        if seen != color:
            raise LBError(f"{self.path} shows `X-Canary: 1` -> {seen} after the change")
        return result

    def started_at(self):
        rc, out, err = self.runner.run(
            [self.docker, "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", self.container],
            f"inspecting {self.container}",
            check=False,
        )
        running, _space, started = out.strip().partition(" ")
        if rc != 0 or running != "true":
            raise LBUnreachable(f"the LB container {self.container} is not running: {(err or out).strip()[-300:]}")
        return started

    def counters(self, route, colors):
        # Nginx has no per-server counters: zeros, with the real health; the gate judges on request_samples.
        self.check_route(route)
        pid = self.started_at()  # changes only when the container (re)starts, as a reload keeps the counters' source
        _text, state = self.read_state()
        entry = config.find_route(state, route)
        seen, _serving = self.probe(entry)
        servers = {}
        for color in colors:
            _up, shown, check = status(entry["states"][color], seen[color]["code"])
            servers[color] = {
                "req_tot": 0,
                "hrsp_5xx": 0,
                "econ": 0,
                "eresp": 0,
                "stot": 0,
                "status": shown,
                "check_status": check,
                "rtime": None,
            }
        return {"pid": pid, "servers": servers}

    def request_samples(self, route, since, until):
        self.check_route(route)
        with ContainerLog(self.runner, self.docker, self.container, since, until, timestamps=False) as log:
            return parse_lines(
                log.lines(keep_other=lambda line: "switchyard=" not in line and "nginx" not in line), route
            )

    def request_log(self, routes, since, until, max_records=None):
        self.check_routes(routes)
        records = collections.deque(maxlen=max_records or None)
        seen = 0
        with ContainerLog(self.runner, self.docker, self.container, since, until) as log:
            lines = (
                line for line in log.lines(keep_other=lambda line: not line.startswith("20")) if not is_synthetic(line)
            )
            for record in iter_timed_lines(lines, routes):
                seen += 1
                records.append(record)
        self.request_log_dropped = seen - len(records)
        return sorted(records, key=lambda record: record[0])

    def request_records(self, routes, since, until):
        self.check_routes(routes)
        records = []
        with ContainerLog(self.runner, self.docker, self.container, since, until) as log:
            for line in log.lines(keep_other=lambda line: not line.startswith("20")):
                for at, route, color, status, _latency in iter_timed_lines([line], routes):
                    records.append((at, route, color, status, request_target(line)))
        return sorted(records, key=lambda record: record[0])
