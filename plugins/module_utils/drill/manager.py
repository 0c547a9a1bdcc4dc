# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drill module: a rehearsed rollback - a share (or all) of new traffic to the previous color, held, then
back to exactly the weights and states the LB showed before - timed and counted.

Order: plan by the rollback's rules, check the LB shows what the ledger says and the target warm (refusals change
nothing), hold the release lock (the caller's lease, or a lock of its own), put back the traffic an interrupted
drill left (its "running" record says how), probe, record the drill "running" with the weights to restore, shift,
hold while watching the target and the lock, restore, read the LB's log, record the outcome and release the lock.

Whatever fails after the shift - an error, or SIGTERM/SIGHUP/SIGINT (a killed controller, a dropped SSH session) -
the traffic is put back before anything else, unless another run took the lock over (a forced rollback: its
traffic is left alone). A restore that fails keeps the lock and the record says so; a drill killed outright
(SIGKILL) leaves its "running" record, and the next drill, or the role's rescue, puts the traffic back from it.
"""

from __future__ import annotations

import datetime
import random
import signal
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import utc_now
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.cli import ComposeCLI
from ansible_collections.switchyard.release.plugins.module_utils.drill import rto
from ansible_collections.switchyard.release.plugins.module_utils.drill.probes import Prober, probe_number
from ansible_collections.switchyard.release.plugins.module_utils.drill.warm import container_problems, lb_problems
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import MAX_WEIGHT, LBError, observed_weights
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import NotHolder, lock_state
from ansible_collections.switchyard.release.plugins.module_utils.release.manager import new_release_id
from ansible_collections.switchyard.release.plugins.module_utils.release.plan import plan_drill

# Consecutive failed probes that end the hold at once (with the target DOWN on the LB, the other reason).
FAILING_PROBES = 3
# The signals that end a drill with its traffic put back (SIGKILL cannot be caught: the "running" record is for it).
SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


class DrillFailed(SwitchyardError):
    """The drill did not go as rehearsed."""


class Interrupted(BaseException):
    """A signal while the drill held the lock: raised in the main thread so the restore runs (a BaseException,
    as KeyboardInterrupt, so that no `except Exception` swallows it)."""


@contextmanager
def signals_raise():
    """SIGTERM, SIGHUP and SIGINT raise Interrupted once; later ones are only noted, so they cannot break the
    restore the first one started. Yields the list of the signals' names seen. Main thread only (signal's rule):
    elsewhere nothing is installed."""
    caught = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, _frame):
        caught.append(signal.Signals(signum).name)
        if len(caught) == 1:
            raise Interrupted(caught[0])

    previous = {}
    for name in SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, handler)
    try:
        yield caught
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def wall(epoch):
    """An epoch time as an aware UTC datetime (the LB logs' and the ledger's clock)."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)  # noqa: UP017 (module_utils target 3.8)


def check_probe(probe):
    """The probe's address and path go into HTTP requests: an http(s) URL with a host and no credentials (they
    would be echoed in results and errors), a path from /, no space or control character (http.client would
    refuse them only once the drill runs)."""
    parts = urlsplit(probe["url"])
    if parts.username is not None or parts.password is not None:
        raise InvalidParameters(
            "probe.url: an address with user:password@ is refused (the drill's results and errors would show it); "
            "give the LB's public address without credentials (switchyard_smoke_url, or the role's "
            "switchyard_drill_probe_url)"
        )
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


def restore_to_of(before):
    """The restore_to a record keeps: {route: {weights, states}} (JSON, unlike restore_targets' tuples)."""
    return {route: {"weights": w, "states": s} for route, (w, s) in restore_targets(before).items()}


def placed_from(restore_to):
    """restore_to as the LB would show it once put back: {route: {color: {weight, state}}}."""
    return {
        route: {
            color: {"weight": weight, "state": target["states"].get(color)}
            for color, weight in target["weights"].items()
        }
        for route, target in restore_to.items()
    }


def lb_disagrees(plan, placed):
    """Why the LB does not show what the ledger says before a drill ([] when it does): on every route the live
    color ready at full weight and the target taking no new traffic (weight 0, or not ready). Otherwise a drill
    or a release was interrupted there, and "putting back" what the LB shows now would make that permanent."""
    problems = []
    live, target = plan["live"], plan["to"]

    def weight(view):
        try:
            return int(view.get("weight"))
        except (TypeError, ValueError):
            return None

    for route, servers in sorted(placed.items()):
        shown = servers.get(live) or {}
        if weight(shown) != MAX_WEIGHT or shown.get("state") != "ready":
            problems.append(
                f"route {route}: {live} (live) at weight {shown.get('weight')} {shown.get('state')}, "
                f"not {MAX_WEIGHT} ready"
            )
        other = servers.get(target) or {}
        if weight(other) and other.get("state") == "ready":
            problems.append(f"route {route}: {target} takes new traffic (weight {other.get('weight')} ready)")
    return problems


def unfinished_drill(ledger):
    """The last drill when it may have left traffic moved - running (killed before its end) or its restore
    failed - and says how to put it back; else None."""
    drills = ledger.get("drills") or []
    last = drills[-1] if drills else None
    if last and last.get("restore_to") and (last.get("outcome") == "running" or last.get("restored") is False):
        return last
    return None


def superseded(ledger, drill):
    """Why a drill's restore_to no longer applies (a release or rollback ran since: the LB is theirs now), or None."""
    releases = ledger.get("releases") or []
    last = releases[-1].get("id") if releases else None
    if last != drill.get("after_release") or ledger.get("live") != drill.get("from"):
        return f"release {last} ran since (live {ledger.get('live')})"
    return None


def judge(plan, figures):
    """Why a drill that ran its hold did not show what it rehearses ([] when it did): the target took its share
    (the RTO reached, the target served probes) and no request failed."""
    reasons = []
    if figures.get("rto_ms") is None:
        what = "every new request" if plan["full"] else "any probe"
        reasons.append(f"the RTO was not reached: {plan['to']} did not take {what} within measure_seconds")
    if not figures.get("observed_percent"):
        reasons.append(f"{plan['to']} served none of the probes during the hold")
    failed = figures.get("failed") or {}
    if failed.get("total"):
        real = failed.get("real", 0)
        reasons.append(f"the LB logged {failed['total']} failed requests ({real} real) during the drill")
    return reasons


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
        self.keep_lock = False  # a restore failed: the lock stays with the record that says so
        self.taken_by = None  # another run took the lock over during the drill (its traffic is left alone)
        self.after_release = None
        self.result = {"changed": False, "kind": self.lb.kind}

    def partial_result(self):
        return self.result

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
        if params.get("recover"):
            return self.recover(ledger)
        lease = params.get("lease") or {}
        rid = params.get("release_id") or lease.get("release_id") or new_release_id(store.utc_now(), "drill")
        # The caller's own lock is not "another run": the plan refuses a lock held by anyone else.
        state = lock_state(lock, utc_now())
        if state == "held" and lease and lock and lock.get("token") == lease.get("token"):
            state = "free"
        plan = plan_drill(ledger, state, rid, params["percent"], params["full"], params.get("after_rollback"))
        self.result["plan"] = plan
        if plan["refused"]:
            raise LedgerError(plan["refused"], plan=plan)
        pending = unfinished_drill(ledger)
        stale = superseded(ledger, pending) if pending else None
        before = self.read(routes)
        self.result["before"] = before
        if pending:
            self.result["interrupted"] = {"id": pending["id"], "superseded": stale}
        # An interrupted drill's traffic is put back first: the LB must then show what the ledger says.
        self.refuse_if_disagrees(plan, placed_from(pending["restore_to"]) if pending and not stale else before, pending)
        self.check_warm(plan, before)
        states = {plan["to"]: "ready"}
        self.result["restore_to"] = restore_to_of(before)
        if self.module.check_mode:
            self.result["routes"] = self.lb.shift_routes(routes, plan["weights"], states, check_mode=True)
            self.result["changed"] = True
            self.result["drill"] = self.record(plan, "planned", None, {}, {})
            said = summary(self.params["app"], self.result["drill"], self.params["hold_seconds"])
            if pending and not stale:
                said = f"Would first put back the traffic drill {pending['id']} left moved (it was interrupted). {said}"
            self.result["summary"] = said
            return self.result
        self.hold_lock(plan)
        try:
            with signals_raise() as caught, self.lease.kept():
                if pending:
                    self.put_back(pending, stale, f"drill {plan['id']}")
                    before = self.read(routes)
                    self.result.update(before=before, restore_to=restore_to_of(before))
                    self.refuse_if_disagrees(plan, before, None)
                    self.check_warm(plan, before)
                self.drill(plan, before, states, caught)
        finally:
            self.release_own_lock()
        return self.result

    def read(self, routes):
        return {route: self.lb.servers(route) for route in routes}

    def refuse_if_disagrees(self, plan, placed, pending):
        problems = lb_disagrees(plan, placed)
        if problems:
            what = f"what drill {pending['id']} would put back" if pending else "the LB"
            raise LedgerError(
                f"Drill of {self.params['app']} refused: {what} does not match the ledger (live {plan['live']}) - "
                f"{'; '.join(problems)}. A drill or a release was interrupted there: put the traffic right "
                "(rollback.yml, or release.yml), then drill; nothing was changed.",
                plan=plan,
                lb=problems,
            )

    def check_warm(self, plan, before):
        problems = self.warm_problems(plan, before)
        self.result["warm"] = {"color": plan["to"], "problems": problems}
        if problems:
            raise LedgerError(
                f"Drill of {self.params['app']} refused: {plan['to']} is not warm - {'; '.join(problems)}. A rollback "
                "now would have to start it first (rollback.yml does); nothing was changed.",
                plan=plan,
                warm=self.result["warm"],
            )

    def warm_problems(self, plan, before):
        project = f"{self.params['app']}-{plan['to']}"
        cli = ComposeCLI(self.runner, self.params["docker_cli"], project)
        return container_problems(project, cli.containers(), plan["images"]) + lb_problems(plan["to"], before)

    # -- the lock --------------------------------------------------------------------------------
    def hold_lock(self, plan):
        """The caller's lease, or a lock of this module's own (released at the end unless a restore failed)."""
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
        if not self.own_lock or self.keep_lock:
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

    def lock_taken(self):
        """A real read of the lock: who took it over (their public lock), or None while this run holds it. A
        lock nobody holds (released by force) is not "taken": nobody else moves traffic, the restore goes on."""
        try:
            self.lease.verify()
        except NotHolder as exc:
            if exc.details.get("lock"):
                self.taken_by = exc.msg
                return exc.msg
        except SwitchyardError as exc:  # the state directory unreadable for a moment: the heartbeat still renews
            self.module.warn(f"the release lock could not be read during the drill: {exc.msg}")
        return None

    # -- an interrupted drill ---------------------------------------------------------------------
    def recover(self, ledger):
        """recover=true (the role's rescue): put back the traffic the last drill left moved, under the caller's
        lease (a run that took the lock over is not undone), and record it; nothing when there is none."""
        if not self.params.get("lease"):
            raise InvalidParameters(
                "recover=true needs lease: the run's own lock, so that no other run's traffic is undone"
            )
        pending = unfinished_drill(ledger)
        self.result["interrupted"] = {"id": pending["id"]} if pending else None
        if not pending:
            self.result["msg"] = "No drill left traffic to put back."
            return self.result
        if self.module.check_mode:
            self.result.update(changed=True, restore_to=pending["restore_to"])
            return self.result
        self.lease = Lease(self.params["lease"], False, warn=self.module.warn)
        self.lease.hold()
        self.put_back(pending, superseded(ledger, pending), "a retry of the role")
        return self.result

    def put_back(self, pending, stale, by):
        """The traffic an interrupted drill left moved, back to its restore_to (unless a release ran since), and
        its record ended: failed, restored. Raises DrillFailed (the lock kept) when the LB cannot be put back."""
        record = {k: v for k, v in pending.items() if k != "recorded_at"}
        reason = record.get("reason") or "interrupted (the run was killed before it put the traffic back)"
        self.result["restore_to"] = record["restore_to"]
        if stale:
            record.update(outcome="failed", restored=None, reason=f"{reason}; not put back: {stale}")
        else:
            targets = {route: (t["weights"], t["states"]) for route, t in record["restore_to"].items()}
            problems = self.restore_routes(targets)
            self.result["changed"] = True
            if problems:
                self.keep_lock = True
                raise DrillFailed(
                    f"putting back the traffic drill {pending['id']} left moved failed: {'; '.join(problems)}. The LB "
                    f"shows {self.result.get('weights_after')}; the lock is kept.",
                    drill=pending,
                )
            record.update(outcome="failed", restored=True, reason=f"{reason}; the traffic was put back by {by}")
        self.write(record, unlock=False)
        self.result["put_back"] = record

    # -- the drill -------------------------------------------------------------------------------
    def drill(self, plan, before, states, caught):
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
        reason, times, moved = None, {"wall_start": time.time()}, False
        times["log_dropped"] = self.lb.log_dropped()
        prober.start(fast=True)
        try:
            self.baseline(prober, plan)
            # Before the shift: a drill killed outright (SIGKILL) leaves this, and the next one puts it back.
            releases = self.ledger_releases()
            self.after_release = releases[-1]["id"] if releases else None
            running = self.record(plan, "running", None, {}, {"wall_shift": time.time()})
            running["restore_to"] = restore_to_of(before)
            self.write(running, unlock=False)
            moved = True
            times["shift"], times["wall_shift"] = time.monotonic(), time.time()
            self.result["routes"] = self.shift(routes, plan["weights"], states)
            self.result["changed"] = True
            times["shifted"] = time.monotonic()
            reason = self.hold(prober, plan, times)
        except SwitchyardError as exc:
            reason = exc.msg
        except BaseException as exc:  # a signal (Interrupted), or a bug: the traffic first
            problem = self.restore(before, prober, times) if moved else None
            prober.stop()
            why = f"interrupted by {exc}" if isinstance(exc, Interrupted) else f"{type(exc).__name__}: {exc}"
            record = self.record(plan, "failed", f"{why}{'; ' + problem if problem else ''}", {}, times)
            self.end(record, problem, before)
            if isinstance(exc, Interrupted):
                raise DrillFailed(self.failed_message(plan, record), drill=record, signals=caught) from None
            raise
        problem = self.restore(before, prober, times) if moved else None
        time.sleep(max(0.0, times.get("back", time.monotonic()) + params["settle_seconds"] - time.monotonic()))
        times["wall_settled"] = time.time()
        probes = prober.stop()
        figures = self.measure(plan, probes, tag, times) if moved else {}
        reasons = [reason] if reason else []
        if moved and not reason and not problem:
            reasons += judge(plan, figures)
        if problem:
            reasons.append(problem)
        record = self.record(plan, "failed" if reasons else "done", "; ".join(reasons) or None, figures, times)
        self.end(record, problem, before)
        self.result["summary"] = summary(params["app"], record, params["hold_seconds"])
        if record["outcome"] != "done":
            raise DrillFailed(self.failed_message(plan, record), drill=record)

    def ledger_releases(self):
        ledger, _lock = store.read_state(self.params)
        return ledger.get("releases") or []

    def end(self, record, problem, before):
        """The record written: the lock released with it, unless the restore failed (kept, with restore_to for the
        retry) or another run took the lock over (the record is written beside its lock, which stays theirs)."""
        if problem and not self.taken_by:
            record.update(restored=False, restore_to=restore_to_of(before))
            self.keep_lock = True
        elif "restore" in self.result:
            record["restored"] = None if self.taken_by else True
        self.result["drill"] = record
        self.write(record, unlock=not (self.keep_lock or self.taken_by), force=bool(self.taken_by))

    def failed_message(self, plan, record):
        app, shows = self.params["app"], self.result.get("weights_after")
        if self.taken_by:
            where = (
                f"The traffic was left as the run that took the release lock over set it ({self.taken_by}); the "
                "drill did not touch it after that."
            )
        elif record.get("restored") is False:
            where = (
                f"The traffic could NOT all be put back: the LB shows {shows}; the lock is kept (the record keeps "
                "restore_to: the role's rescue, or the next drill.yml once the lock expires, puts it back)."
            )
        elif record.get("restored"):
            where = f"The traffic is back as it was before (the LB shows {shows}) and the lock is released."
        else:
            where = "The traffic was not moved and the lock is released."
        return f"Drill of {app} to {plan['to']} failed: {record['reason']}. {where}"

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
                "anything moved; fix probe (the path must answer below 500)"
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
        """Probe fast for the measure window, then slowly to the end of the hold, watching the target and the
        lock: the target DOWN on the LB, failing probes or the lock taken over end the hold at once. The reason it
        ended early, or None."""
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
                taken = self.lock_taken()
                if taken:
                    return f"the release lock was taken over during the hold: {taken}"
                for route in params["routes"]:
                    view = self.lb.servers(route).get(plan["to"]) or {}
                    if not view.get("up"):
                        return f"{plan['to']} went {view.get('status') or 'DOWN'} on route {route} during the hold"
            time.sleep(0.05)

    def restore(self, before, prober, times):
        """Every route back to what the LB showed before (None), or why not. Not when another run took the lock
        over (a forced rollback: putting back the drill's "before" would undo it); otherwise no lock is needed -
        putting traffic back on the live color is always allowed. The probes go fast again to time the way back."""
        prober.fast()
        times.setdefault("fast_end", time.monotonic())
        if self.taken_by or self.lock_taken():
            self.result["restore"] = []
            return "the LB was not put back: another run holds the release lock"
        times["back"], times["wall_back"] = time.monotonic(), time.time()
        problems = self.restore_routes(restore_targets(before))
        times["restored"] = time.monotonic()
        return "; ".join(problems) or None

    def restore_routes(self, targets):
        """{route: (weights, states)} applied route by route, each as far as it goes; the problems ([] if none)."""
        restored, problems = [], []
        for route, (weights, states) in targets.items():
            try:
                moved = self.lb.shift(route, weights, states, up_timeout=self.params["up_timeout"])
                moved.pop("diff", None)
                restored.append(moved)
                if not matches(moved.get("after") or {}, weights, states):
                    problems.append(f"route {route} shows {moved.get('after')} after the restore")
            except SwitchyardError as exc:
                restored.append({"route": route, "failed": True, "msg": exc.msg, **self.lb.read_after(route)})
                problems.append(f"putting route {route} back failed: {exc.msg}")
        self.result["restore"] = restored
        self.result["weights_after"] = observed_weights(restored)
        return problems

    def measure(self, plan, probes, tag, times):
        """The RTO, the way back and the failures, from the probes and the LB's log (read once the log shows the
        last probe, log_wait at most). Failures count from the shift call to the end of the settle window."""
        routes = self.params["routes"]
        last = probes[-1]["n"] if probes else None
        deadline = time.monotonic() + self.params["log_wait"]
        records, error = [], None
        since = wall(times["wall_start"] - 1)  # every probe's line, the baseline's too
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
        dropped = self.lb.log_dropped() if times.get("log_dropped") is not None else None
        window = [r for r in records if times["wall_shift"] <= r[0] <= times.get("wall_settled", float("inf"))]
        full, target, live = plan["full"], plan["to"], plan["live"]
        figures = {
            "rto_ms": rto.time_to(probes, target, times["shift"], times.get("fast_end"), every=full),
            "back_ms": rto.time_to(probes, live, times["back"], None, every=True) if "back" in times else None,
            "observed_percent": rto.share(probes, target, times.get("shifted", 0), times.get("back", 0))
            if "shifted" in times
            else None,
            "failed": rto.failures(window, tag) if error is None else None,
            "probes": rto.summary(probes),
            # The probes the LB's log does not show (a handful at most), timed from the shift call: to explain them.
            "unlogged": [
                {"n": p["n"], "sent_ms": round((p["sent"] - times["shift"]) * 1000, 1), "status": p["status"]}
                for p in probes
                if not p.get("logged")
            ][:5],
        }
        if dropped is not None:
            figures["log_dropped"] = dropped - times["log_dropped"]
            if figures["log_dropped"] > 0:
                self.module.warn(
                    f"the LB dropped {figures['log_dropped']} lines of its request log during the drill (its output "
                    "was not read in time): the probes among them are left out of the RTO and the share, and a "
                    "failed request among them is not counted"
                )
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
            # The last release when the drill moved traffic: a restore_to is stale once another one ran.
            "after_release": self.after_release,
        }
        if figures.get("unlogged"):
            record["unlogged"] = figures["unlogged"]
        if figures.get("log_dropped"):
            record["lb_log_dropped"] = figures["log_dropped"]
        if times.get("wall_shift"):
            record["started_at"] = wall(times["wall_shift"]).isoformat(timespec="milliseconds")
        return record

    def write(self, record, unlock=True, force=False):
        """The record in the ledger; with unlock, the lock released with it (the lease's or the module's own)."""
        token = self.lease.options["token"]
        try:
            written = store.run_action(
                store.action_params(
                    {"app": self.params["app"], "path": self.params["path"], "owner": self.params["owner"]},
                    action="drill",
                    release_id=record["id"],
                    drill=record,
                    lock_token=token,
                    unlock=unlock,
                    force=force,
                ),
                host=store.hostname(),
                pid=store.process_id(),
            )
        except SwitchyardError as exc:
            exc.msg = f"the drill ({record['outcome']}) could not be recorded: {exc.msg}"
            raise
        if unlock and token == self.own_lock:
            self.own_lock = None  # released with the record
        self.result.update(ledger=written["ledger"], lock_state=written["lock_state"])
