# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Traefik as a LoadBalancer: the file provider's watched directory, written atomically, read back from the API.

The lb role keeps everything in one host directory: etc/traefik.yml (static: entrypoints, the file provider,
the JSON access log), etc/switchyard.json (the routes' settings) and etc/dynamic/ (watched; one file per
route, rendered by dynamic.py). A change is a new route file renamed into place in etc/dynamic/; Traefik
reloads it without a restart, and the change is done only once Traefik's API shows it loaded without error
(the read-back). The file is the persistence: a restarted Traefik loads the same weights.

Order of a change, as in HAProxy: a color leaving drain or maint that Traefik has not checked UP since the last
load of the dynamic files (maint: not checked at all; drain: stopped, or loaded too recently) is first listed at
weight 0 (health-checked, no traffic) until it is UP; then the weights and states asked, in one file (Traefik swaps
the weighted service at once: no moment without capacity); then, after the drain wait, maint. A drained color is
checked all along (its check router, dynamic.py), so one Traefik shows UP - checked since the last load - goes
straight to its weight in that one file.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import fcntl
import json
import os
import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    COLORS,
    MAX_WEIGHT,
    STATES,
    LBError,
    LBUnreachable,
    LoadBalancer,
    shares,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import ContainerLog
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik import api
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.dynamic import (
    BASE_FILE,
    check_route_name,
    check_settings,
    dump_route,
    file_name,
    initial_record,
    maintenance_middleware,
    read_record,
    route_settings,
    service_name,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.log import (
    iter_records,
    parse_line,
    parse_lines,
)

SETTINGS_FILE = "switchyard.json"
# Held (flock) around read, write and read-back by every writer of the route files: no change is lost.
LOCK_FILE = ".switchyard.lock"
INTERVAL_RE = re.compile(r"([0-9]+)(ms|s|m)")


def seconds(interval):
    match = INTERVAL_RE.fullmatch(interval or "1s")
    number, unit = int(match.group(1)), match.group(2)
    return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number


def check_change(weights, states):
    """The asked weights and states, refused naming the parameter before anything is read or written."""
    for color, weight in (weights or {}).items():
        if color not in COLORS:
            raise InvalidParameters(f"weights.{color}: unknown color; use {', '.join(COLORS)}")
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT
        ):
            raise InvalidParameters(f"weights.{color}={weight!r}: a weight is an integer from 0 to {MAX_WEIGHT}")
    for color, state in (states or {}).items():
        if color not in COLORS:
            raise InvalidParameters(f"states.{color}: unknown color; use {', '.join(COLORS)}")
        if state is not None and state not in STATES:
            raise InvalidParameters(f"states.{color}={state!r}: allowed values are {', '.join(STATES)}")


def records_text(record):
    lines = [f"{c}: weight {v['weight']}, {v['state']}\n" for c, v in sorted(record["colors"].items())]
    return "".join(lines) + f"canary: {record.get('canary') or 'none'}\n"


class Traefik(LoadBalancer):
    kind = "traefik"

    def __init__(self, options, runner):
        self.runner = runner
        self.dir = options["dir"]
        self.container = options.get("container")
        if not self.container:
            raise InvalidParameters(
                "lb.container is required for lb.kind=traefik: its API is read inside the container "
                "(docker exec; it is never published)"
            )
        self.docker = options.get("docker_cli") or "docker"
        self.timeout = max(float(options.get("timeout") or 5), 1.0)
        self.settings_path = os.path.join(self.dir, "etc", SETTINGS_FILE)
        self.dynamic_dir = os.path.join(self.dir, "etc", "dynamic")
        # The module's initial_weights: a route without a file yet gets one with these (the lb role's first run).
        self.initial_weights = options.get("initial_weights")
        self._settings = None

    # -- files ---------------------------------------------------------------------------------
    def settings(self):
        if self._settings is None:
            text = read_text(self.settings_path)
            if text is None:
                raise LBError(f"{self.settings_path} is missing: run the lb role (switchyard_lb_kind: traefik)")
            try:
                self._settings = check_settings(json.loads(text))
            except ValueError as exc:
                raise LBError(f"{self.settings_path} is not valid: {exc}") from exc
        return self._settings

    def route_config(self, route):
        return route_settings(self.settings(), route)[1]

    def route_path(self, route):
        return os.path.join(self.dynamic_dir, file_name(route))

    def check_route(self, route):
        check_route_name(route)
        # An unknown route is refused naming the ones there are - once the lb role has written them (before the
        # first release there is no LB yet: preflight says so rather than failing on the name).
        if os.path.exists(self.settings_path):
            self.route_config(route)

    def read_route(self, route):
        """(file text or None, record): the record of a route without a file is the initial weights'."""
        text = read_text(self.route_path(route))
        if text is not None:
            try:
                return text, read_record(text)
            except InvalidParameters as exc:
                raise LBError(f"{self.route_path(route)}: {exc.msg}") from exc
        if self.initial_weights is None:
            raise LBError(f"route {route} has no file {self.route_path(route)}: run the lb role")
        return None, initial_record(self.initial_weights)

    # -- reading what Traefik loaded -------------------------------------------------------------------
    def snapshot(self, routes=()):
        hosts = [service_name(r, c) for r in routes for c in COLORS]
        return api.read(self.runner, self.docker, self.container, hosts)

    def view(self, snap, route, record):
        return snap.route_view(route, self.route_config(route)["port"], record, self.settings().get("trusted"))

    def mismatches(self, snap, route, record):
        """What Traefik shows of route that record does not say (empty: loaded), and the route's errors."""
        problems = snap.errors(prefix=f"{route}")
        try:
            views = self.view(snap, route, record)
        except LBError as exc:
            return problems + [exc.msg]
        candidate = record.get("canary")
        if not self.settings().get("trusted") or candidate is None or record["colors"][candidate]["state"] == "maint":
            candidate = None  # no header routers (no trusted sources), or the candidate in maint: none loaded
        for color, view in record["colors"].items():
            weight, state, seen = view["weight"], view["state"], views[color]
            if (seen["weight"], seen["state"]) != (weight, state):
                problems.append(f"{color}: weight {seen['weight']}, {seen['state']} (the file says {weight}, {state})")
        if snap.candidate(route) != candidate:
            problems.append(f"X-Canary: 1 reaches {snap.candidate(route)} (the file says {candidate})")
        shown = self.maintenance_shown(snap, route)
        if shown != bool(record.get("maintenance")):
            problems.append(f"maintenance {'on' if shown else 'off'} (the file says {record.get('maintenance')})")
        return problems

    @staticmethod
    def maintenance_shown(snap, route):
        """Whether the route's main router answers the maintenance page, as Traefik loaded it."""
        router = snap.routers.get(f"{route}@file") or snap.routers.get(f"{route}-default@file") or {}
        return f"{maintenance_middleware(route)}@file" in (router.get("middlewares") or [])

    def wait_loaded(self, route, record, started):
        """The read-back: poll the API until it shows record loaded without error; LBError naming what it shows."""
        deadline = started + max(self.timeout, 3)
        while True:
            snap = self.snapshot([route])
            problems = self.mismatches(snap, route, record)
            if not problems:
                return snap
            if time.monotonic() >= deadline:
                raise LBError(
                    f"Traefik did not load the new {self.route_path(route)} within {max(self.timeout, 3):g} s; "
                    f"its API shows: {'; '.join(problems)} (an invalid file is not applied: Traefik's log says why)",
                    after=self.view(snap, route, record) if f"{route}@file" in snap.services else None,
                )
            time.sleep(0.1)

    def servers(self, route):
        self.check_route(route)
        _text, record = self.read_route(route)
        return self.view(self.snapshot([route]), route, record)

    # -- changing --------------------------------------------------------------------------------
    def write(self, route, record, guard):
        guard()
        path = self.route_path(route)
        os.makedirs(self.dynamic_dir, exist_ok=True)
        previous = read_text(path)
        # A temporary file in the watched directory (no .yml suffix: Traefik skips it), renamed over the route's.
        write_atomically(path, dump_route(self.settings(), route, record), mode=0o644, like=path)
        try:
            return self.wait_loaded(route, record, time.monotonic())
        except LBError as exc:
            # Never leave a file Traefik did not take in the watched directory (a restart would load it): the
            # previous one goes back (Traefik still runs it), or none when there was none.
            if previous is not None:
                write_atomically(path, previous, mode=0o644, like=path)
                undone = f"{path} was restored to the previous file"
            else:
                os.unlink(path)
                undone = f"{path} was removed"
            raise type(exc)(f"{exc.msg}; {undone}", **exc.details) from exc

    @contextlib.contextmanager
    def locked(self, seconds):
        """The writers' lock (flock on etc/.switchyard.lock), waited for at most seconds."""
        path = os.path.join(self.dir, "etc", LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LBError(f"cannot open the writers' lock {path}: {exc.strerror} (run as the lb role's owner)") from exc
        try:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LBError(
                            f"{path} stayed locked by another writer of the route files for {seconds:g} s"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def lock_wait(self, up_timeout=30, drain_timeout=0):
        return up_timeout + drain_timeout + 4 * max(self.timeout, 3) + 30

    def wait_ready(self, route, timeout):
        """After a restart: wait until /ping answers OK and the API shows route's file loaded; the seconds waited,
        LBUnreachable naming what was last seen after timeout."""
        started, seen = time.monotonic(), "nothing"
        while True:
            try:
                snap = self.snapshot([route])
                text, record = self.read_route(route)
                problems = [] if snap.ping else ["/ping does not answer OK"]
                if text is not None:
                    problems += self.mismatches(snap, route, record)
                if not problems:
                    return round(time.monotonic() - started, 3)
                seen = "; ".join(problems)
            except LBUnreachable as exc:
                seen = exc.msg
            if time.monotonic() - started >= timeout:
                raise LBUnreachable(
                    f"Traefik did not answer /ping with route {route} loaded within {timeout:g} s: {seen}"
                )
            time.sleep(0.2)

    def last_change(self):
        """When the watched directory last changed (epoch, 0 if it is missing): its own mtime (a file renamed into
        it or removed) and its files' (one edited in place). Traefik rebuilds every service of every route on any
        change of its dynamic configuration, not only the services of the file that changed."""
        try:
            newest = os.stat(self.dynamic_dir).st_mtime
            with os.scandir(self.dynamic_dir) as entries:
                for entry in entries:
                    with contextlib.suppress(FileNotFoundError):  # a temporary file renamed meanwhile
                        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:
            return 0
        return newest

    def settle_left(self, snap):
        """Seconds until Traefik's health of the colors can be trusted: a service Traefik rebuilds (on every load of
        the dynamic files, and when Traefik starts) counts as UP until its first check, one interval later. Trusted
        from 1.5 intervals after the load: the watched directory's last change plus the provider's throttle, or the
        start."""
        settings = self.settings()
        interval = seconds(settings.get("check_interval", "1s"))
        changed = self.last_change()
        loaded = changed + seconds(settings.get("throttle", "2s")) if changed else 0
        if snap.age is not None:
            loaded = max(loaded, time.time() - snap.age)
        return loaded + 1.5 * interval - time.time()

    def target(self, record, weights, states):
        out = copy.deepcopy(record)
        for color in COLORS:
            if (weights or {}).get(color) is not None:
                out["colors"][color]["weight"] = weights[color]
            if (states or {}).get(color) is not None:
                out["colors"][color]["state"] = states[color]
        return out

    @staticmethod
    def lifted(record, target):
        return [
            c for c in COLORS if record["colors"][c]["state"] != "ready" and target["colors"][c]["state"] == "ready"
        ]

    def gaining(self, record, target):
        """The colors target sends more traffic than record (a higher weight or a higher share of the ready
        colors' weights), those lifted out of drain or maint aside (shift_locked judges them: UP, or waited for)."""
        lifted = self.lifted(record, target)

        def share(rec, color):
            total = sum(v["weight"] for v in rec["colors"].values() if v["state"] == "ready")
            return rec["colors"][color]["weight"] / total if total else 0

        return [
            c
            for c in COLORS
            if c not in lifted
            and target["colors"][c]["state"] == "ready"
            and target["colors"][c]["weight"] > 0
            and (target["colors"][c]["weight"] > record["colors"][c]["weight"] or share(target, c) > share(record, c))
        ]

    def refuse_unsafe(self, route, before, record, target):
        """Refused: more traffic for a color not UP, or no weight left on the UP colors (one leaving drain or maint
        counts: it is waited for until UP before any weight is raised)."""
        lifted = self.lifted(record, target)
        for color in self.gaining(record, target):
            if not before[color]["up"]:
                raise LBError(
                    f"weights.{color}: route {route}, color {color} is {before[color]['status']}; refusing to send it "
                    "traffic (it must be UP)",
                    before=before,
                )
        effective = sum(
            v["weight"]
            for c, v in target["colors"].items()
            if v["state"] == "ready" and (before[c]["up"] or c in lifted)
        )
        if effective == 0:
            shown = {c: v["weight"] for c, v in target["colors"].items()}
            raise LBError(
                f"route {route} would have zero total weight on its UP colors: {shown}; refusing to leave it without "
                "capacity",
                before=before,
            )

    def phases(self, record, target, lifted, drain_timeout):
        """[(why, record)] to write in order; the last is the target. lifted: the colors to list at weight 0 and wait
        for first."""
        phases = []
        if lifted:
            lift = copy.deepcopy(record)
            for color in lifted:
                lift["colors"][color] = {"weight": 0, "state": "ready"}
            phases.append((f"lift {', '.join(lifted)} at weight 0 and wait until UP", lift))
        entering_maint = [
            c for c in COLORS if target["colors"][c]["state"] == "maint" and record["colors"][c]["state"] != "maint"
        ]
        if entering_maint and drain_timeout > 0:
            draining = copy.deepcopy(target)
            for color in entering_maint:
                draining["colors"][color]["state"] = "drain"
            phases.append(("weights and states, drain before maint", draining))
        phases.append(("weights and states", target))
        return phases

    def wait_up(self, route, record, colors, up_timeout, loaded_at):
        # A color Traefik has just started checking shows UP until its first check: wait out one interval first.
        interval = seconds(self.settings().get("check_interval", "1s"))
        deadline = loaded_at + up_timeout + interval
        while True:
            snap = self.snapshot([route])
            views = self.view(snap, route, record)
            down = [c for c in colors if not views[c]["up"]]
            if not down and time.monotonic() >= loaded_at + 1.5 * interval:
                return
            if time.monotonic() >= deadline:
                raise LBError(
                    f"route {route}: {', '.join(down)} did not come UP within up_timeout={up_timeout} s after leaving "
                    "maint/drain (listed at weight 0); no weight was raised",
                    after=views,
                )
            time.sleep(0.2)

    def wait_drained(self, route, record, colors, drain_timeout):
        started = time.monotonic()
        while True:
            views = self.view(self.snapshot([route]), route, record)
            busy = {c: views[c]["sessions"] for c in colors if views[c]["sessions"]}
            if not busy or time.monotonic() - started >= drain_timeout:
                return {"waited": round(time.monotonic() - started, 3), "sessions_left": busy}
            time.sleep(0.25)

    def shift(self, route, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        self.check_route(route)
        check_change(weights, states)
        if up_timeout < 0 or drain_timeout < 0:
            raise InvalidParameters("up_timeout and drain_timeout must be >= 0 (seconds)")
        if check_mode:
            return self.shift_locked(route, weights, states, up_timeout, drain_timeout, True, guard)
        with self.locked(self.lock_wait(up_timeout, drain_timeout)):
            return self.shift_locked(route, weights, states, up_timeout, drain_timeout, False, guard)

    def shift_locked(self, route, weights, states, up_timeout, drain_timeout, check_mode, guard):
        guard = guard or (lambda: None)
        text, record = self.read_route(route)
        started = time.monotonic()
        result = {"route": route, "changed": False, "method": "file", "commands": []}
        if text is None:
            before = {c: {"weight": 0, "state": "maint", "up": False, "status": "MAINT", "sessions": 0} for c in COLORS}
        else:
            snap = self.snapshot([route])
            problems = self.mismatches(snap, route, record)
            if problems:
                # A file Traefik did not load (invalid, or edited by hand): never build on it silently.
                snap = self.wait_loaded(route, record, started)
            before = self.view(snap, route, record)
        target = self.target(record, weights, states)
        rendered = dump_route(self.settings(), route, target)
        moves = target != record
        lifted = self.lifted(record, target) if moves else []
        if moves and text is not None and any(before[c]["up"] for c in self.gaining(record, target) + lifted):
            # UP of a color gaining traffic or leaving drain is trusted only once Traefik has checked it since it
            # last rebuilt it.
            settle = self.settle_left(snap)
            if settle > 0:
                time.sleep(settle)
                before = self.view(self.snapshot([route]), route, record)
                result["settled_s"] = round(settle, 3)
        result["before"] = before
        if moves:
            self.refuse_unsafe(route, before, record, target)
        # A color leaving drain that Traefik shows UP, checked since the last load, takes its weight in the one file
        # of the target; any other (DOWN: stopped; maint: not checked) is listed at weight 0 and waited for first.
        checked = [c for c in lifted if before[c]["up"]]
        lifted = [c for c in lifted if c not in checked]
        if checked:
            result["lifted_checked"] = checked
        result["diff"] = [
            {
                "before_header": "servers",
                "after_header": "servers",
                "before": records_text(record),
                "after": records_text(target),
            },
            {
                "before_header": self.route_path(route),
                "after_header": self.route_path(route),
                "before": text or "",
                "after": rendered,
            },
        ]
        changed = rendered != text
        phases = self.phases(record, target, lifted, drain_timeout) if moves else [("settings", target)]
        result["changed"] = changed
        if check_mode or not changed:
            result["commands"] = [f"write {file_name(route)} ({why})" for why, _r in phases] if changed else []
            result["after"] = before if not changed else {c: {**before[c], **target["colors"][c]} for c in COLORS}
            result["shares"] = shares(result["after"])
            return result
        timings = {}
        self.last = result
        for why, phase in phases:
            phase_started = time.monotonic()
            self.write(route, phase, guard)
            result["commands"].append(f"write {file_name(route)} ({why})")
            timings.setdefault("loaded_ms", []).append(round((time.monotonic() - phase_started) * 1000, 1))
            if phase is not target and lifted and why.startswith("lift"):
                self.wait_up(route, phase, lifted, up_timeout, time.monotonic())
            if why.startswith("weights and states, drain"):
                drained = [c for c in COLORS if phase["colors"][c]["state"] == "drain"]
                result["drain"] = self.wait_drained(route, phase, drained, drain_timeout)
        if "drain" not in result and drain_timeout > 0:
            drained = [
                c for c in COLORS if (states or {}).get(c) == "drain" and record["colors"][c]["state"] != "drain"
            ]
            if drained:
                result["drain"] = self.wait_drained(route, target, drained, drain_timeout)
        after = self.view(self.snapshot([route]), route, target)
        result["after"] = after
        result["shares"] = shares(after)
        timings["total_ms"] = round((time.monotonic() - started) * 1000, 1)
        result["timings"] = timings
        return result

    def set_canary(self, color, check_mode=False, guard=None):
        if color not in COLORS:
            raise InvalidParameters(f"canary={color!r}: use one of {', '.join(COLORS)}")
        guard = guard or (lambda: None)
        routes = [r["name"] for r in self.settings()["routes"]]
        result = {"changed": False, "before": None, "after": color, "routes": {}, "commands": []}
        with contextlib.ExitStack() as stack:
            if not check_mode:
                stack.enter_context(self.locked(self.lock_wait()))
            self.write_canary(routes, color, check_mode, guard, result)
        return result

    def write_canary(self, routes, color, check_mode, guard, result):
        for route in routes:
            text, record = self.read_route(route)
            target = dict(record, canary=color)
            result["before"] = result["before"] or record.get("canary")
            rendered = dump_route(self.settings(), route, target)
            result["routes"][route] = {"before": record.get("canary"), "after": color}
            if rendered == text:
                continue
            result["changed"] = True
            result["commands"].append(f"write {file_name(route)} (canary {color})")
            if not check_mode:
                self.write(route, target, guard)

    def maintenance(self, route):
        self.check_route(route)
        return self.maintenance_shown(self.snapshot([route]), route)

    def set_maintenance(self, route, enabled, check_mode=False, guard=None):
        self.check_route(route)
        with contextlib.ExitStack() as stack:
            if not check_mode:
                stack.enter_context(self.locked(self.lock_wait()))
            text, record = self.read_route(route)
            before = self.maintenance_shown(self.snapshot([route]), route) if text is not None else False
            target = dict(record, maintenance=enabled)
            rendered = dump_route(self.settings(), route, target)
            result = {"route": route, "changed": rendered != text or before != enabled, "before": before}
            result.update(after=enabled, commands=[], diff=[{"before": text or "", "after": rendered}])
            result["diff"][0].update(before_header=self.route_path(route), after_header=self.route_path(route))
            if result["changed"]:
                result["commands"].append(f"write {file_name(route)} (maintenance {'on' if enabled else 'off'})")
            if check_mode or not result["changed"]:
                return result
            started = time.monotonic()
            self.write(route, target, guard or (lambda: None))  # read back: the API shows the middleware (or not)
            result["timings"] = {"loaded_ms": round((time.monotonic() - started) * 1000, 1)}
            return result

    # -- the rest of the interface ----------------------------------------------------------------------
    def config_files(self, routes):
        files = {
            "lb/traefik.yml": os.path.join(self.dir, "etc", "traefik.yml"),
            f"lb/{SETTINGS_FILE}": self.settings_path,
            "lb/dynamic/switchyard.yml": os.path.join(self.dynamic_dir, "switchyard.yml"),
        }
        for route in routes:
            files[f"lb/dynamic/{os.path.basename(self.route_path(route))}"] = self.route_path(route)
        return files

    def exists(self):
        return os.path.exists(self.settings_path) and os.path.isdir(self.dynamic_dir)

    def control_level(self):
        """admin for Traefik: its API and /ping answered (the read-back; else LBUnreachable, and LBError naming a
        tool the LB image lacks) and the watched directory can be written (the change)."""
        snap = self.snapshot()
        writable = os.access(self.dynamic_dir, os.W_OK | os.X_OK)
        level = "admin" if writable and snap.ping else "read-only" if snap.ping else "API without /ping"
        return {
            "endpoint": f"{self.dynamic_dir} (file provider), {api.API} in {self.container}",
            "level": level,
            "admin": level == "admin",
        }

    def validate_config(self):
        """What Traefik loaded: no router, service or middleware of the files in error, and every route file loaded
        as written (an invalid file is not applied: Traefik keeps the previous one, which shows here)."""
        try:
            routes = [r["name"] for r in self.settings()["routes"]]
            snap = self.snapshot(routes)
        except LBUnreachable:
            raise
        problems = snap.errors()
        for route in routes:
            text, record = self.read_route(route)
            if text is None:
                problems.append(f"route {route}: no file {self.route_path(route)}")
                continue
            problems += [f"route {route}: {p}" for p in self.mismatches(snap, route, record)]
        if not os.path.exists(os.path.join(self.dynamic_dir, BASE_FILE)):
            problems.append(f"{os.path.join(self.dynamic_dir, BASE_FILE)} is missing (the health endpoint)")
        return {
            "file": self.dynamic_dir,
            "valid": not problems,
            "rc": 0 if not problems else 1,
            "output": "\n".join(problems)[-1500:] or "Traefik loaded every file without error",
        }

    def counters(self, route, colors):
        """Traefik keeps no per-color counters that survive a reload: zero counters, the real health status; the
        gate judges on request_samples. pid is the start time of Traefik's process (changes on a restart only)."""
        self.check_route(route)
        _text, record = self.read_route(route)
        snap = self.snapshot([route])
        views = self.view(snap, route, record)
        servers = {}
        for color in colors:
            servers[color] = {
                "req_tot": 0,
                "hrsp_5xx": 0,
                "econ": 0,
                "eresp": 0,
                "stot": 0,
                "status": views[color]["status"],
                "check_status": "L7OK" if views[color]["up"] else ("" if views[color]["state"] == "maint" else "L7STS"),
                "rtime": None,
            }
        return {"pid": snap.start, "servers": servers}

    def logs(self, since, until):
        return ContainerLog(self.runner, self.docker, self.container, since, until, timestamps=False)

    def request_samples(self, route, since, until):
        self.check_route(route)
        with self.logs(since, until) as log:
            return parse_lines(log.lines(keep_other=lambda line: not line.startswith("{")), route)

    def request_log(self, routes, since, until, max_records=None):
        self.check_routes(routes)
        records = collections.deque(maxlen=max_records or None)
        seen = 0
        with self.logs(since, until) as log:
            for record in iter_records(log.lines(keep_other=lambda line: not line.startswith("{")), routes):
                seen += 1
                records.append(record)
        self.request_log_dropped = seen - len(records)
        return sorted(records, key=lambda record: record[0])

    def request_records(self, routes, since, until):
        self.check_routes(routes)
        records = []
        with self.logs(since, until) as log:
            for line in log.lines(keep_other=lambda line: not line.startswith("{")):
                parsed = parse_line(line)
                if not parsed or parsed[0] not in routes:
                    continue
                for at, route, color, status, _latency in iter_records([line], routes, synthetic=True):
                    records.append((at, route, color, status, parsed[2].get("RequestPath")))
        return sorted(records, key=lambda record: record[0])
