# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The traffic module: the colors' weights and states on every route of an application's LB, whatever
its kind, and (optionally) the step in the ledger, with the weights the LB shows afterwards.

With a lease (the token of the run holding the release lock), the lock is checked and renewed
before anything moves: a run that lost its lock must not move traffic under another run.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import UTC, utc_now
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    MAX_WEIGHT,
    LBError,
    busy,
    observed_weights,
    shares,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec, load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.lb.page import ask, check_url
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease, lease_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError, find_release
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

RECORD_ACTIONS = ("step", "promote", "rollback", "fail")


COLOR_STATES = {"type": "str", "choices": ["ready", "drain", "maint"]}


def traffic_argument_spec():
    """The traffic module's options (the recreate module validates its page's calls against them too)."""
    return {
        **state_argument_spec(),
        **lb_argument_spec(),
        **lease_argument_spec(),
        "weights": {"type": "dict", "options": {"blue": {"type": "int"}, "green": {"type": "int"}}},
        "states": {"type": "dict", "options": {"blue": COLOR_STATES, "green": COLOR_STATES}},
        "up_timeout": {"type": "int", "default": 30},
        "drain_timeout": {"type": "int", "default": 0},
        "canary": {"type": "str", "choices": ["blue", "green"]},
        "require_idle": {"type": "str", "choices": ["blue", "green"]},
        "idle_seconds": {"type": "int", "default": 0},
        "idle_timeout": {"type": "int", "default": 60},
        "maintenance": {
            "type": "dict",
            "options": {
                "enabled": {"type": "bool", "required": True},
                "wait_up": {"type": "str", "choices": ["blue", "green"]},
                "probe_urls": {"type": "list", "elements": "str", "default": []},
                "probe_timeout": {"type": "float", "default": 10},
                "since": {"type": "float"},
            },
        },
        "best_effort": {"type": "bool", "default": False},
        "record": {
            "type": "dict",
            "options": {
                "release_id": {"type": "str", "required": True},
                "action": {"type": "str", "choices": list(RECORD_ACTIONS), "default": "step"},
                "step": {"type": "dict"},
                "color": {"type": "str", "choices": ["blue", "green"]},
                "reason": {"type": "str"},
            },
        },
    }


def asked(options):
    """{color: value} of a weights/states option (argument_spec fills the colors not given with None)."""
    return {color: value for color, value in (options or {}).items() if value is not None}


def reached(routes, moved, weights, states):
    """Whether the LB shows what was asked on every route (read back, not assumed): the restore says
    "traffic is back" only then."""
    seen = {r["route"]: r.get("after") or {} for r in moved if not r.get("failed")}
    for route in routes:
        after = seen.get(route)
        if after is None:
            return False
        for color, weight in weights.items():
            if (after.get(color) or {}).get("weight") != weight:
                return False
        for color, state in states.items():
            if (after.get(color) or {}).get("state") != state:
                return False
    return True


class Traffic:
    """Moves (or reads) the traffic of every route, in order; records the result when asked."""

    def __init__(self, module, runner=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.lb = load_balancer(self.params["lb"], self.runner)
        self.lease = Lease(self.params.get("lease"), module.check_mode, warn=module.warn)
        self.result = {"changed": False, "kind": self.lb.kind, "routes": []}

    def run(self):
        weights, states, maintenance, record = self.check_params()
        with self.lease.kept():  # refuses before anything moves when this run lost the lock
            if record and not self.module.check_mode:
                self.require_release(record)
            canary = self.set_canary(self.params.get("canary"))
            if maintenance and maintenance["enabled"]:
                self.set_maintenance(maintenance)  # the page first: nothing behind it is served any more
            self.move(weights, states)
            if maintenance and not maintenance["enabled"]:
                self.set_maintenance(maintenance)  # weights and states in place before the route answers again
            paged = bool((self.result.get("maintenance") or {}).get("changed"))
            self.result["changed"] = self.result["changed"] or canary or paged
            if record:
                self.record(record)
        return self.result

    def check_params(self):
        """What argument_spec cannot check, before anything is read or moved: (weights, states, maintenance, record)."""
        weights, states = asked(self.params["weights"]), asked(self.params["states"])
        for color, weight in weights.items():
            if not 0 <= weight <= MAX_WEIGHT:
                raise InvalidParameters(f"weights.{color}={weight}: a weight is from 0 to {MAX_WEIGHT}")
        if not self.params["routes"]:
            raise InvalidParameters("routes: give at least one route")
        self.lb.check_routes(self.params["routes"])
        maintenance = self.params.get("maintenance")
        if maintenance:
            for index, url in enumerate(maintenance.get("probe_urls") or []):
                check_url(url, f"maintenance.probe_urls[{index}]")
            if maintenance.get("wait_up") and maintenance["enabled"]:
                raise InvalidParameters("maintenance.wait_up is for maintenance.enabled=false (the route resuming)")
        record = self.params["record"]
        if record:
            if not self.lease:
                raise InvalidParameters(
                    "record needs lease: the token of the run that holds the release lock (release_state's lock_token)"
                )
            self.record_params(record, {})  # a bad record is refused before anything moves
        return weights, states, maintenance, record

    def set_canary(self, color):
        """Point the canary header at color (first: a reload by the move below must keep it); whether it changed."""
        if not color:
            return False
        self.result["canary"] = self.lb.set_canary(color, check_mode=self.module.check_mode, guard=self.lease.guard())
        return self.result["canary"]["changed"]

    def set_maintenance(self, options):
        """The maintenance page of every route on or off, then checked live through the LB (probe_urls). Off waits
        first until options["wait_up"] is UP on every route (up_timeout): a route resumes on a color the LB sees UP."""
        enabled, check_mode = options["enabled"], self.module.check_mode
        out = {"enabled": enabled, "routes": [], "probes": []}
        self.result["maintenance"] = out
        if not enabled and options.get("wait_up") and not check_mode:
            out["waited_up_s"] = self.wait_up(options["wait_up"])
        try:
            out["routes"] = self.lb.set_maintenance_routes(
                self.params["routes"], enabled, check_mode=check_mode, guard=self.lease.guard()
            )
        except SwitchyardError as exc:
            out["routes"] = exc.details.pop("maintenance_routes", [])
            self.result["changed"] = self.result["changed"] or any(r.get("changed") for r in out["routes"])
            raise
        out["changed"] = any(r["changed"] for r in out["routes"])
        self.result["changed"] = self.result["changed"] or out["changed"]
        diffs = [
            {
                "before_header": f"{r['route']} maintenance",
                "after_header": f"{r['route']} maintenance",
                "before": f"maintenance: {'on' if r['before'] else 'off'}\n",
                "after": f"maintenance: {'on' if r['after'] else 'off'}\n",
            }
            for r in out["routes"]
            if r["changed"]
        ]
        for route in out["routes"]:
            route.pop("diff", None)
        if diffs and self.module._diff:
            self.result.setdefault("diff", []).extend(diffs)
        if check_mode:
            return
        out["probes"] = self.probe_page(options.get("probe_urls") or [], enabled, options["probe_timeout"])
        out["verified_at"] = max((p["at"] for p in out["probes"]), default=time.time())
        if options.get("since"):
            # The outage a recreate reports: from the page verified on to the route verified answering again.
            out["outage_ms"] = round((out["verified_at"] - float(options["since"])) * 1000, 1)

    def wait_up(self, color):
        """Seconds waited until color is UP on every route; LBError naming the routes where it is not."""
        started = time.monotonic()
        deadline = started + self.params["up_timeout"]
        while True:
            down = {}
            for route in self.params["routes"]:
                view = self.lb.servers(route).get(color) or {}
                if not view.get("up"):
                    down[route] = view.get("status") or "absent"
            if not down:
                return round(time.monotonic() - started, 3)
            if time.monotonic() >= deadline:
                raise LBError(
                    f"{color} is not UP on the LB after {self.params['up_timeout']} s ("
                    + ", ".join(f"route {r}: {s}" for r, s in sorted(down.items()))
                    + "): the maintenance page stays on"
                )
            time.sleep(0.2)

    def probe_page(self, urls, enabled, timeout):
        """Each URL asked through the LB until it answers the page (enabled) or anything else than the page and
        a 5xx (resumed), up to timeout seconds; [{url, status, page, at, tries}]; LBError with what was seen."""
        done = []
        for url in urls:
            deadline, tries = time.monotonic() + timeout, 0
            while True:
                tries += 1
                seen = ask(url, timeout=min(5.0, max(timeout, 1.0)))
                good = seen["page"] if enabled else (not seen["page"] and seen["status"] and seen["status"] < 500)
                if good:
                    done.append({**seen, "at": time.time(), "tries": tries})
                    break
                if time.monotonic() >= deadline:
                    wanted = "the maintenance page (503 with Retry-After)" if enabled else "the application again"
                    said = seen["error"] or f"HTTP {seen['status']}{' (the page)' if seen['page'] else ''}"
                    raise LBError(
                        f"{url} does not answer {wanted} through the LB after {timeout} s "
                        f"({tries} tries, last: {said})",
                        maintenance=self.result.get("maintenance"),
                    )
                time.sleep(0.05)
        return done

    def move(self, weights, states):
        if weights or states:
            try:
                moved = self.lb.shift_routes(
                    self.params["routes"],
                    weights,
                    states,
                    up_timeout=self.params["up_timeout"],
                    drain_timeout=self.params["drain_timeout"],
                    check_mode=self.module.check_mode,
                    best_effort=self.params["best_effort"],
                    guard=self.lease.guard(),
                )
            except SwitchyardError as exc:
                # What moved before the failure is in the result: the caller records the truth.
                self.result["routes"] = exc.details.get("routes", [])
                self.result["changed"] = any(r.get("changed") for r in self.result["routes"])
                self.result["weights"] = observed_weights(self.result["routes"])
                self.result["reached"] = reached(self.params["routes"], self.result["routes"], weights, states)
                raise
        else:
            moved = []
            for route in self.params["routes"]:
                self.lb.check_route(route)
                servers = self.lb.servers(route)
                moved.append({"route": route, "changed": False, "after": servers, "shares": shares(servers)})
        self.result["routes"] = moved
        self.result["changed"] = any(m["changed"] for m in moved)
        self.result["reached"] = reached(self.params["routes"], moved, weights, states)
        self.result["servers"] = {r["route"]: r["after"] for r in self.result["routes"]}
        self.result["weights"] = observed_weights(self.result["routes"])
        if self.params["require_idle"]:
            why = busy(self.result["servers"], self.params["require_idle"])
            if why:
                raise LBError(f"{self.params['require_idle']} is not idle: {why}")
            if self.params["idle_seconds"] and not self.module.check_mode:
                self.result["idle"] = self.wait_quiet(self.params["require_idle"])
        diffs = [d for r in self.result["routes"] for d in r.pop("diff", [])]
        if diffs and self.module._diff:
            self.result["diff"] = diffs

    def wait_quiet(self, color):
        """Until the LB's request log shows no request answered by color on any route over the last idle_seconds
        (bounded by idle_timeout): a color about to be stopped is confirmed idle by what the LB served, not only by
        its weight and its current sessions (a request in flight on an old Nginx worker, a header canary)."""
        seconds, routes = self.params["idle_seconds"], self.params["routes"]
        deadline = time.monotonic() + max(self.params["idle_timeout"], seconds)
        while True:
            now = utc_now()
            since = now - datetime.timedelta(seconds=seconds)
            served = [r for r in self.lb.request_log(routes, since, now) if r[2] == color]
            if not served:
                return {"color": color, "seconds": seconds, "quiet_since": since.isoformat()}
            last = datetime.datetime.fromtimestamp(served[-1][0], UTC)
            if time.monotonic() >= deadline:
                raise LBError(
                    f"{color} is not idle: the LB logged {len(served)} request(s) answered by {color} over the last "
                    f"{seconds} s (the last at {last.isoformat()}); it must serve none for {seconds} s before it "
                    f"stops (waited {self.params['idle_timeout']} s)"
                )
            time.sleep(min(1.0, max(0.1, seconds - (now - last).total_seconds())))

    # -- the ledger ----------------------------------------------------------------------------
    def state_params(self, record):
        return {"app": self.params["app"], "path": store.state_directory(self.params), **record}

    def require_release(self, record):
        """The release must be in the ledger and still running (promoted, for a promote re-run)."""
        ledger, _lock = store.read_state(self.state_params(record))
        app, release_id = self.params["app"], record["release_id"]
        entry = find_release(ledger, release_id)
        if entry is None:
            raise LedgerError(f"release {release_id} is not in the ledger of {app}: begin it first")
        allowed = ("running", "promoted") if record["action"] in ("step", "promote") else ("running",)
        if entry.get("outcome") not in allowed:
            raise LedgerError(
                f"release {release_id} of {app} ended {entry.get('outcome')} ({entry.get('reason') or 'no reason'}): "
                "its traffic is not moved - another run owns the application now"
            )

    def record_params(self, record, weights):
        step = dict(record.get("step") or {})
        action = record["action"]
        if action == "step":
            if not step.get("name"):
                raise InvalidParameters("record.step.name is required with record.action=step")
            step["weights"] = weights
        return store.action_params(
            self.state_params(record),
            action=action,
            step=step if action == "step" else None,
            weights=(weights or None) if action != "step" else None,
            lock_token=(self.params.get("lease") or {}).get("token"),
            lock_ttl=(self.params.get("lease") or {}).get("ttl") or 900,
        )

    def record(self, record):
        params = self.record_params(record, self.result["weights"])
        if self.module.check_mode:
            self.result["record"] = {"skipped": True, "action": record["action"], "release_id": record["release_id"]}
            return
        try:
            outcome = store.run_action(params, host=store.hostname(), pid=store.process_id())
        except SwitchyardError as exc:
            if self.result["changed"]:
                shown = self.result["weights"]
                exc.msg = f"the traffic moved (the LB shows {shown}), but recording it failed: {exc.msg}"
            raise
        self.result["changed"] = self.result["changed"] or outcome["changed"]
        self.result["ledger"] = outcome["ledger"]
        self.result["release"] = outcome["release"]
        self.result["lock_state"] = outcome["lock_state"]
