# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drill module: a rehearsed rollback - a share (or all) of new traffic to the previous color, held, then
back to exactly the weights and states the LB showed before - timed and counted.

Order: plan by the rollback's rules and check the target warm (refusals change nothing), hold the release lock
(the caller's lease, or a lock of its own), probe, shift, hold while watching the target, restore, read the LB's
log, record the drill in the ledger and release the lock. Whatever fails after the shift, the traffic is put
back where it was before anything else happens (the live color keeps its traffic), and the lock is released.
"""

from __future__ import annotations

import datetime
import random
import time
from urllib.parse import urlsplit

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import utc_now
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.cli import ComposeCLI
from ansible_collections.switchyard.release.plugins.module_utils.drill import rto
from ansible_collections.switchyard.release.plugins.module_utils.drill.probes import Prober, probe_number
from ansible_collections.switchyard.release.plugins.module_utils.drill.warm import container_problems, lb_problems
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError, observed_weights
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import lock_state
from ansible_collections.switchyard.release.plugins.module_utils.release.manager import new_release_id
from ansible_collections.switchyard.release.plugins.module_utils.release.plan import plan_drill

# Consecutive failed probes that end the hold at once (with the target DOWN on the LB, the other reason).
FAILING_PROBES = 3


class DrillFailed(SwitchyardError):
    """The drill did not go as rehearsed; the traffic was put back."""


def check_probe(probe):
    """The probe's address and path go into HTTP requests: an http(s) URL with a host, a path from /, no space or
    control character (http.client would refuse them only once the drill runs)."""
    parts = urlsplit(probe["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameters(f"probe.url={probe['url']!r}: an http:// or https:// address of the LB, with its host")
    path = probe["path"]
    if not path.startswith("/") or any(ord(c) <= 32 or ord(c) == 127 for c in path):
        raise InvalidParameters(f"probe.path={path!r}: a path from /, without spaces or control characters")


def restore_targets(before):
    """{route: (weights, states)} that bring each route back to what the LB showed before the drill."""
    return {
        route: (
            {color: int(view["weight"]) for color, view in servers.items()},
            {color: view["state"] for color, view in servers.items()},
        )
        for route, servers in before.items()
    }


def summary(app, drill, hold_seconds):
    """One sentence: what the drill would do (planned) or did, with its figures."""
    share = "all new traffic" if drill["full"] else f"{drill['percent']} % of new traffic"
    if drill["outcome"] == "planned":
        return (
            f"Would move {share} of {app} to {drill['to']} ({drill['version']}) for {hold_seconds} s, then back to "
            f"{drill['from']} as it was; {drill['to']} is warm."
        )

    def ms(value):
        return f"{value:.0f} ms" if value is not None else "not reached"

    said = (
        f"Drill {drill['id']}: {share} of {app} to {drill['to']} ({drill['version']}) and back to {drill['from']} - "
        f"RTO {ms(drill['rto_ms'])}, back {ms(drill['back_ms'])}, "
        f"{drill['failed_requests'] if drill['failed_requests'] is not None else 'unknown'} failed requests: "
        f"{drill['outcome']}"
    )
    return said + (f" ({drill['reason']})" if drill.get("reason") else "")


def matches(after, weights, states):
    return all(
        (after.get(color) or {}).get("weight") == weight and (after.get(color) or {}).get("state") == states[color]
        for color, weight in weights.items()
    )


class DrillManager:
    def __init__(self, module, runner=None, connection=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.lb = load_balancer(self.params["lb"], self.runner)
        self.connection = connection
        self.lease = None
        self.own_lock = None
        self.result = {"changed": False, "kind": self.lb.kind}

    # -- entry point ---------------------------------------------------------------------------
    def run(self):
        params = self.params
        routes = params["routes"]
        if not routes:
            raise InvalidParameters("routes: give at least one route")
        for name in ("hold_seconds", "up_timeout"):
            if params[name] < 0:
                raise InvalidParameters(f"{name}={params[name]}: a number of seconds, 0 or more")
        if params["probe"]["rate"] <= 0 or params["probe"]["timeout"] <= 0:
            raise InvalidParameters("probe.rate and probe.timeout must be positive")
        check_probe(params["probe"])
        self.lb.check_routes(routes)
        ledger, lock = store.read_state(params)
        lease = params.get("lease") or {}
        rid = params.get("release_id") or lease.get("release_id") or new_release_id(store.utc_now(), "drill")
        # The caller's own lock is not "another run": the plan refuses a lock held by anyone else.
        state = lock_state(lock, utc_now())
        if state == "held" and lease and lock and lock.get("token") == lease.get("token"):
            state = "free"
        plan = plan_drill(ledger, state, rid, params["percent"], params["full"])
        self.result["plan"] = plan
        if plan["refused"]:
            raise LedgerError(plan["refused"], plan=plan)
        before = {route: self.lb.servers(route) for route in routes}
        self.result["before"] = before
        problems = self.warm_problems(plan, before)
        self.result["warm"] = {"color": plan["to"], "problems": problems}
        if problems:
            raise LedgerError(
                f"Drill of {params['app']} refused: {plan['to']} is not warm - {'; '.join(problems)}. A rollback now "
                "would have to start it first (rollback.yml does); nothing was changed.",
                plan=plan,
                warm=self.result["warm"],
            )
        states = {plan["to"]: "ready"}
        self.result["restore_to"] = {
            route: {"weights": weights, "states": states_before}
            for route, (weights, states_before) in restore_targets(before).items()
        }
        if self.module.check_mode:
            self.result["routes"] = self.lb.shift_routes(routes, plan["weights"], states, check_mode=True)
            self.result["changed"] = True
            self.result["drill"] = self.record(plan, "planned", None, {}, {})
            self.result["summary"] = summary(self.params["app"], self.result["drill"], self.params["hold_seconds"])
            return self.result
        self.hold_lock(plan)
        try:
            with self.lease.kept():
                self.drill(plan, before, states)
        finally:
            self.release_own_lock()
        return self.result

    def warm_problems(self, plan, before):
        project = f"{self.params['app']}-{plan['to']}"
        cli = ComposeCLI(self.runner, self.params["docker_cli"], project)
        return container_problems(project, cli.containers(), plan["images"]) + lb_problems(plan["to"], before)

    # -- the lock --------------------------------------------------------------------------------
    def hold_lock(self, plan):
        """The caller's lease, or a lock of this module's own (released at the end whatever happens)."""
        options = self.params.get("lease")
        if not options:
            taken = store.run_action(
                store.action_params(
                    {"app": self.params["app"], "path": self.params["path"], "owner": self.params["owner"]},
                    action="lock",
                    release_id=plan["id"],
                    lock_ttl=self.params["lock_ttl"],
                ),
                host=store.hostname(),
                pid=store.process_id(),
            )
            self.own_lock = taken["lock_token"]
            options = {
                "app": self.params["app"],
                "path": self.params["path"],
                "token": taken["lock_token"],
                "release_id": plan["id"],
                "ttl": self.params["lock_ttl"],
            }
        self.lease = Lease(options, False, warn=self.module.warn)

    def release_own_lock(self):
        if not self.own_lock:
            return
        try:
            store.run_action(
                store.action_params(
                    {"app": self.params["app"], "path": self.params["path"]},
                    action="unlock",
                    release_id="unlock",
                    lock_token=self.own_lock,
                ),
                host=store.hostname(),
                pid=store.process_id(),
            )
        except SwitchyardError as exc:
            self.module.warn(f"the drill's release lock could not be released: {exc.msg}")

    # -- the drill -------------------------------------------------------------------------------
    def drill(self, plan, before, states):
        params, routes = self.params, self.params["routes"]
        probe = params["probe"]
        tag = f"{random.randrange(16**8):08x}"
        prober = Prober(
            probe["url"],
            probe["path"],
            tag,
            fast_rate=probe["rate"],
            timeout=probe["timeout"],
            connection=self.connection,
        )
        wall_start = utc_now()
        prober.start(fast=True)
        outcome, reason, times = "done", None, {}
        try:
            self.baseline(prober, plan)
            times["shift"] = time.monotonic()
            self.result["routes"] = self.shift(routes, plan["weights"], states)
            self.result["changed"] = True
            times["shifted"] = time.monotonic()
            reason = self.hold(prober, plan, times)
        except SwitchyardError as exc:
            reason = exc.msg
        except BaseException:
            self.restore(before, prober, times)
            prober.stop()
            raise
        if reason:
            outcome = "failed"
        restored = self.restore(before, prober, times)
        if restored:
            outcome, reason = "failed", f"{reason + '; ' if reason else ''}{restored}"
        time.sleep(max(0.0, times.get("back", time.monotonic()) + params["settle_seconds"] - time.monotonic()))
        probes = prober.stop()
        figures = self.measure(plan, probes, tag, wall_start, times)
        record = self.record(plan, outcome, reason, figures, times)
        self.result["drill"] = record
        self.result["summary"] = summary(params["app"], record, params["hold_seconds"])
        self.write(record)
        if outcome != "done":
            raise DrillFailed(
                f"Drill of {params['app']} to {plan['to']} failed: {reason}. The traffic is back as it was before "
                f"(the LB shows {self.result.get('weights_after')}) and the lock is released.",
                drill=record,
            )

    def baseline(self, prober, plan):
        """A few probes before anything moves: the probe path must answer through the LB (else the drill would
        measure nothing, and is refused with the traffic untouched)."""
        deadline = time.monotonic() + max(0.3, 3 / self.params["probe"]["rate"])
        while time.monotonic() < deadline or not prober.taken():
            if prober.failing(FAILING_PROBES):
                break
            time.sleep(0.02)
        if prober.failing(FAILING_PROBES) or not any(rto.ok(p["status"]) for p in prober.taken()):
            raise DrillFailed(
                f"the probes to {self.params['probe']['url']}{self.params['probe']['path']} fail through the LB before "
                "anything moved; fix probe (the path must answer below 500) - the traffic was not moved"
            )

    def shift(self, routes, weights, states):
        try:
            moved = self.lb.shift_routes(
                routes, weights, states, up_timeout=self.params["up_timeout"], guard=self.lease.guard()
            )
        except SwitchyardError as exc:
            self.result["routes"] = exc.details.get("routes", [])
            raise DrillFailed(f"moving {weights} failed: {exc.msg}") from exc
        for route in moved:
            route.pop("diff", None)
        return moved

    def hold(self, prober, plan, times):
        """Probe fast for the measure window, then slowly to the end of the hold, watching the target: DOWN on
        the LB or failing probes end the hold at once. The reason it ended early, or None."""
        params = self.params
        end = times["shifted"] + params["hold_seconds"]
        # Fast from the shift call until measure_seconds after it returned (an LB that applies a change late - a
        # watched file - is still timed), within the hold.
        fast_until = min(times["shifted"] + params["measure_seconds"], max(end, times["shifted"] + 0.5))
        next_look = 0.0
        while True:
            now = time.monotonic()
            if now >= fast_until and "fast_end" not in times:
                times["fast_end"] = now
                prober.slow()
            if now >= end and "fast_end" in times:
                return None
            if prober.failing(FAILING_PROBES):
                return f"{FAILING_PROBES} probes in a row failed during the hold ({plan['to']} stopped answering?)"
            if now >= next_look:
                next_look = now + 0.5
                self.lease.check()
                for route in params["routes"]:
                    view = self.lb.servers(route).get(plan["to"]) or {}
                    if not view.get("up"):
                        return f"{plan['to']} went {view.get('status') or 'DOWN'} on route {route} during the hold"
            time.sleep(0.05)

    def restore(self, before, prober, times):
        """Every route back to what the LB showed before, route by route as far as each goes (an emergency: no
        lock check); None, or why it is not. The probes go fast again to time the way back."""
        prober.fast()
        times.setdefault("fast_end", time.monotonic())
        times["back"] = time.monotonic()
        restored, problems = [], []
        for route, (weights, states) in restore_targets(before).items():
            try:
                moved = self.lb.shift(route, weights, states, up_timeout=self.params["up_timeout"])
                moved.pop("diff", None)
                restored.append(moved)
                if not matches(moved.get("after") or {}, weights, states):
                    problems.append(f"route {route} shows {moved.get('after')} after the restore")
            except SwitchyardError as exc:
                restored.append({"route": route, "failed": True, "msg": exc.msg, **self.lb.read_after(route)})
                problems.append(f"putting route {route} back failed: {exc.msg}")
        times["restored"] = time.monotonic()
        self.result["restore"] = restored
        self.result["weights_after"] = observed_weights(restored)
        return "; ".join(problems) or None

    def measure(self, plan, probes, tag, wall_start, times):
        """The RTO, the way back and the failures, from the probes and the LB's log (read once the log shows the
        last probe, a few seconds at most)."""
        routes = self.params["routes"]
        last = probes[-1]["n"] if probes else None
        deadline = time.monotonic() + self.params["log_wait"]
        records, error = [], None
        since = wall_start - datetime.timedelta(seconds=1)
        while True:
            try:
                records = self.lb.request_records(routes, since, utc_now() + datetime.timedelta(seconds=1))
                error = None
            except LBError as exc:
                error = exc.msg
            if last is None or any(probe_number(r[4], tag) == last for r in records):
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        probes = rto.attach_colors(probes, records, tag)
        full, target, live = plan["full"], plan["to"], plan["live"]
        figures = {
            "rto_ms": rto.time_to(probes, target, times.get("shift", 0), times.get("fast_end"), every=full)
            if "shift" in times
            else None,
            "back_ms": rto.time_to(probes, live, times["back"], None, every=True) if "back" in times else None,
            "observed_percent": rto.share(probes, target, times.get("shifted", 0), times.get("back", 0))
            if "shifted" in times
            else None,
            "failed": rto.failures(records, tag) if error is None else None,
            "probes": rto.summary(probes),
        }
        if error:
            figures["log_error"] = error
            self.module.warn(f"the LB's request log could not be read, failed requests unknown: {error}")
        self.result["figures"] = figures
        return figures

    def record(self, plan, outcome, reason, figures, times):
        failed = figures.get("failed") or {}
        record = {
            "id": plan["id"],
            "to": plan["to"],
            "from": plan["live"],
            "version": plan["version"],
            "percent": plan["percent"],
            "full": plan["full"],
            "hold_seconds": self.params["hold_seconds"],
            "started_at": None,
            "rto_ms": figures.get("rto_ms"),
            "back_ms": figures.get("back_ms"),
            "observed_percent": figures.get("observed_percent"),
            "failed_requests": failed.get("total"),
            "failed_real": failed.get("real"),
            "probes": figures.get("probes"),
            "lb": self.lb.kind,
            "owner": self.params["owner"] or store.default_owner(store.hostname()),
            "outcome": outcome,
            "reason": reason,
        }
        if times.get("shift"):
            record["started_at"] = (
                utc_now() - datetime.timedelta(seconds=time.monotonic() - times["shift"])
            ).isoformat(timespec="milliseconds")
        return record

    def write(self, record):
        """The record in the ledger; the lock released with it (the lease's or the module's own)."""
        token = self.lease.options["token"]
        try:
            written = store.run_action(
                store.action_params(
                    {"app": self.params["app"], "path": self.params["path"], "owner": self.params["owner"]},
                    action="drill",
                    release_id=record["id"],
                    drill=record,
                    lock_token=token,
                ),
                host=store.hostname(),
                pid=store.process_id(),
            )
        except SwitchyardError as exc:
            exc.msg = (
                f"the drill ended ({record['outcome']}, traffic back as before) but recording it failed: {exc.msg}"
            )
            raise
        if token == self.own_lock:
            self.own_lock = None  # released with the record
        self.result.update(ledger=written["ledger"], lock_state=written["lock_state"])
