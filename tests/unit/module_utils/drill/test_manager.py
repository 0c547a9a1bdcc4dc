"""The drill manager's failure paths, against a fake LB (weights in memory, a request log) and fake probes - but the
real ledger, lock and lease in a temporary state directory: the restore, the lock (kept, taken over, released), the
outcome judged from what was measured, a signal mid-hold, and a killed drill put back by the next one."""

from __future__ import annotations

import copy
import os
import signal
import time

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import utc_now
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.drill import manager as drill_manager
from ansible_collections.switchyard.release.plugins.module_utils.drill.manager import (
    DrillFailed,
    DrillManager,
    check_probe,
    judge,
    lb_disagrees,
    superseded,
    unfinished_drill,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release import transitions as tr
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import (
    LEDGER_FILE,
    LedgerError,
    empty_ledger,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import lock_state

PROMOTED = {"green": (256, "ready"), "blue": (0, "drain")}
RESTORE_TO = {"api": {"weights": {"green": 256, "blue": 0}, "states": {"green": "ready", "blue": "drain"}}}


class FakeLB:
    """One route, api; weights and states in memory; every probe logged with the color that served it (smooth
    weighted round robin over the ready colors)."""

    kind = "fake"

    def __init__(self, placed=None):
        self.servers_ = {
            color: {"weight": w, "state": s, "up": True, "status": "UP"}
            for color, (w, s) in (placed or PROMOTED).items()
        }
        self.credit = dict.fromkeys(self.servers_, 0)
        self.log = []
        self.fail_shift_back = False
        self.on_shift = None
        self.shifts = 0
        self.dropped = None  # HAProxy's DroppedLogs when set
        self.drop_blue = 0  # log lines of blue's answers to drop (and count)

    def check_routes(self, routes):
        pass

    def servers(self, route):
        return copy.deepcopy(self.servers_)

    def placed(self):
        return {c: (v["weight"], v["state"]) for c, v in self.servers_.items()}

    def apply(self, weights, states):
        for color, weight in weights.items():
            self.servers_[color]["weight"] = weight
        for color, state in states.items():
            self.servers_[color]["state"] = state

    def shift_routes(self, routes, weights, states, up_timeout=30, check_mode=False, guard=None, **_):
        before = self.servers("api")
        if not check_mode:
            if guard:
                guard()
            self.apply(weights, states)
            self.shifts += 1
            if self.on_shift:
                self.on_shift()
        return [{"route": "api", "before": before, "after": self.servers("api"), "changed": True}]

    def shift(self, route, weights, states, up_timeout=30, **_):
        if self.fail_shift_back:
            raise LBError("the LB's admin socket is gone")
        self.apply(weights, states)
        return {"route": route, "after": self.servers(route), "changed": True}

    def read_after(self, route):
        return {"after": self.servers(route)}

    def request_records(self, routes, since, until):
        return list(self.log)

    def log_dropped(self):
        return self.dropped

    def serve(self, target):
        ready = {c: v["weight"] for c, v in self.servers_.items() if v["state"] == "ready" and v["weight"] > 0}
        for color, weight in ready.items():
            self.credit[color] += weight
        color = max(ready, key=lambda c: self.credit[c])
        self.credit[color] -= sum(ready.values())
        if color == "blue" and self.drop_blue and self.dropped is not None:
            self.drop_blue -= 1
            self.dropped += 1
            return 200
        self.log.append((time.time(), "api", color, 200, target))
        return 200


class FakeConnection:
    def __init__(self, lb, status=None):
        self.lb, self.status = lb, status

    def get(self, url):
        time.sleep(0.002)
        if self.status is not None:
            return self.status
        return self.lb.serve(url.split("127.0.0.1:8080", 1)[1])

    def close(self):
        pass


class FakeModule:
    def __init__(self, params, check_mode=False):
        self.params, self.check_mode, self.warnings = params, check_mode, []

    def warn(self, message):
        self.warnings.append(message)


def v2_promoted():
    """v1 released on blue, then v2 on green: green live, blue previous."""
    ledger, now = empty_ledger("shop"), utc_now()
    for rid, version in (("r1", "v1"), ("r2", "v2")):
        ledger = tr.begin(ledger, rid, now, owner="ops@ctl", version=version)
        ledger = tr.promote(ledger, rid, now)
    assert (ledger["live"], ledger["previous"]) == ("green", "blue")
    return ledger


@pytest.fixture
def state(tmp_path):
    """The state directory with v1 then v2 released (blue previous, green live)."""
    store.save_ledger(str(tmp_path / LEDGER_FILE), v2_promoted())
    return tmp_path


def params(path, **overrides):
    return {
        "app": "shop",
        "path": str(path),
        "lb": {"kind": "fake"},
        "routes": ["api"],
        "percent": 10,
        "full": True,
        "hold_seconds": 1,
        "measure_seconds": 0.4,
        "settle_seconds": 0.2,
        "log_wait": 0.3,
        "up_timeout": 1,
        "probe": {"url": "http://127.0.0.1:8080", "path": "/", "rate": 100, "timeout": 1},
        "docker_cli": "docker",
        "owner": "ops@ctl",
        "lock_ttl": 60,
        "release_id": None,
        "lease": None,
        "after_rollback": False,
        "recover": False,
        **overrides,
    }


def manager(monkeypatch, path, lb, check_mode=False, status=None, **overrides):
    monkeypatch.setattr(drill_manager, "load_balancer", lambda _options, _runner: lb)
    monkeypatch.setattr(DrillManager, "warm_problems", lambda self, plan, before: [])
    module = FakeModule(params(path, **overrides), check_mode)
    return DrillManager(module, runner=object(), connection=FakeConnection(lb, status))


def ledger_and_lock(path):
    return store.read_state({"app": "shop", "path": str(path)})


def last_drill(path):
    return ledger_and_lock(path)[0]["drills"][-1]


def test_a_full_drill_ends_done_with_the_lb_as_before_and_the_lock_released(monkeypatch, state) -> None:
    lb = FakeLB()
    result = manager(monkeypatch, state, lb).run()
    drill = last_drill(state)
    assert lb.placed() == PROMOTED and ledger_and_lock(state)[1] is None
    assert (drill["outcome"], drill["restored"], drill["failed_requests"]) == ("done", True, 0), drill
    assert drill["rto_ms"] is not None and drill["observed_percent"] == 100.0
    assert "restore_to" not in drill and result["drill"] == {k: v for k, v in drill.items() if k != "recorded_at"}


def test_probes_the_lbs_log_dropped_count_for_no_color_and_the_drop_is_recorded(monkeypatch, state) -> None:
    lb = FakeLB()
    lb.dropped, lb.drop_blue = 7, 2
    running = manager(monkeypatch, state, lb)
    running.run()
    assert any("dropped 2 lines of its request log" in w for w in running.module.warnings), running.module.warnings
    drill = last_drill(state)
    assert (drill["outcome"], drill["observed_percent"], drill["lb_log_dropped"]) == ("done", 100.0, 2), drill
    assert drill["probes"]["unlogged"] == 2 and len(drill["unlogged"]) == 2


def test_a_restore_that_fails_keeps_the_lock_says_so_and_the_rescue_puts_it_back(monkeypatch, state) -> None:
    lb = FakeLB()
    lb.on_shift = lambda: setattr(lb, "fail_shift_back", True)
    with pytest.raises(DrillFailed, match="could NOT all be put back: the LB shows .*the lock is kept") as failed:
        manager(monkeypatch, state, lb).run()
    assert "is back as it was" not in failed.value.msg
    ledger, lock = ledger_and_lock(state)
    drill = ledger["drills"][-1]
    assert lock_state(lock, utc_now()) == "held" and lb.placed() == {"green": (0, "ready"), "blue": (256, "ready")}
    assert (drill["outcome"], drill["restored"]) == ("failed", False) and "admin socket is gone" in drill["reason"]
    assert drill["restore_to"] == RESTORE_TO
    assert unfinished_drill(ledger) == drill

    # The role's rescue: recover under the run's own lock puts it back from the record (the LB works again).
    lb.fail_shift_back = False
    lease = {"app": "shop", "path": str(state), "token": lock["token"], "release_id": lock["release_id"], "ttl": 60}
    result = manager(monkeypatch, state, lb, recover=True, lease=lease).run()
    drill = last_drill(state)
    assert lb.placed() == PROMOTED and result["changed"] and (drill["outcome"], drill["restored"]) == ("failed", True)
    assert "put back by a retry of the role" in drill["reason"] and unfinished_drill(ledger_and_lock(state)[0]) is None
    again = manager(monkeypatch, state, lb, recover=True, lease=lease).run()
    assert not again["changed"] and again["interrupted"] is None


def test_a_lock_taken_over_during_the_hold_leaves_that_runs_traffic_alone(monkeypatch, state) -> None:
    lb = FakeLB()

    def forced_rollback():
        lb.on_shift = None
        store.run_action(
            store.action_params(
                {"app": "shop", "path": str(state), "owner": "oncall"},
                action="lock",
                release_id="rb",
                force=True,
                lock_ttl=60,
            )
        )
        lb.apply({"blue": 256, "green": 0}, {"blue": "ready", "green": "drain"})  # what the rollback sets

    lb.on_shift = forced_rollback
    with pytest.raises(DrillFailed, match="taken over .*left as the run that took the release lock over set it"):
        manager(monkeypatch, state, lb, hold_seconds=30).run()
    ledger, lock = ledger_and_lock(state)
    assert lb.placed() == {"blue": (256, "ready"), "green": (0, "drain")}, "the drill undid the rollback"
    assert lock["release_id"] == "rb" and lock_state(lock, utc_now()) == "held"
    drill = ledger["drills"][-1]
    assert drill["outcome"] == "failed" and drill["restored"] is None and unfinished_drill(ledger) is None


def test_sigterm_mid_hold_puts_the_traffic_back_records_and_unlocks(monkeypatch, state) -> None:
    lb = FakeLB()
    lb.on_shift = lambda: os.kill(os.getpid(), signal.SIGTERM)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(DrillFailed, match="interrupted by SIGTERM.*back as it was before"):
        manager(monkeypatch, state, lb, hold_seconds=30).run()
    assert signal.getsignal(signal.SIGTERM) is previous, "the handler must be put back"
    drill = last_drill(state)
    assert lb.placed() == PROMOTED and ledger_and_lock(state)[1] is None
    assert (drill["outcome"], drill["restored"]) == ("failed", True) and "SIGTERM" in drill["reason"]


def killed_mid_hold(state, lb):
    """What SIGKILL leaves: the running record written before the shift, the LB shifted, the lock expired."""
    ledger, _lock = ledger_and_lock(state)
    ledger["drills"] = [
        {
            "id": "d-killed",
            "to": "blue",
            "from": "green",
            "version": "v1",
            "percent": 100,
            "full": True,
            "outcome": "running",
            "reason": None,
            "after_release": ledger["releases"][-1]["id"],
            "restore_to": RESTORE_TO,
        }
    ]
    store.save_ledger(str(state / LEDGER_FILE), ledger)
    lb.apply({"blue": 256, "green": 0}, {"blue": "ready"})


def test_the_next_drill_puts_back_what_a_killed_one_left_then_drills(monkeypatch, state) -> None:
    lb = FakeLB()
    killed_mid_hold(state, lb)
    planned = manager(monkeypatch, state, lb, check_mode=True).run()
    assert planned["summary"].startswith("Would first put back the traffic drill d-killed left moved")
    assert lb.placed() == {"blue": (256, "ready"), "green": (0, "ready")}, "check mode changed the LB"
    manager(monkeypatch, state, lb, percent=10, full=False).run()
    killed, drill = ledger_and_lock(state)[0]["drills"]
    assert lb.placed() == PROMOTED, "the killed drill's shift must not become permanent"
    assert (killed["outcome"], killed["restored"]) == ("failed", True) and "put back by drill" in killed["reason"]
    assert drill["outcome"] == "done" and 0 < drill["observed_percent"] < 50 and ledger_and_lock(state)[1] is None


def test_a_release_since_the_killed_drill_supersedes_its_restore(monkeypatch, state) -> None:
    lb = FakeLB()
    killed_mid_hold(state, lb)
    ledger, _lock = ledger_and_lock(state)
    assert superseded(ledger, ledger["drills"][-1]) is None
    ledger["drills"][-1]["after_release"] = "r1"
    assert "release r2 ran since" in superseded(ledger, ledger["drills"][-1])
    store.save_ledger(str(state / LEDGER_FILE), ledger)
    # The LB is not as the ledger says, and nothing says how to put it back: refused, nothing touched.
    with pytest.raises(LedgerError, match="does not match the ledger .*green \\(live\\) at weight 0 ready"):
        manager(monkeypatch, state, lb).run()
    assert lb.placed() == {"blue": (256, "ready"), "green": (0, "ready")} and lb.shifts == 0


def test_a_shifted_lb_without_a_record_is_refused_not_made_permanent(monkeypatch, state) -> None:
    lb = FakeLB({"green": (230, "ready"), "blue": (26, "ready")})
    with pytest.raises(LedgerError, match="blue takes new traffic \\(weight 26 ready\\).*nothing was changed"):
        manager(monkeypatch, state, lb).run()
    assert lb.shifts == 0 and ledger_and_lock(state)[1] is None and "drills" not in ledger_and_lock(state)[0]


def test_failing_baseline_probes_leave_the_traffic_untouched(monkeypatch, state) -> None:
    lb = FakeLB()
    with pytest.raises(DrillFailed, match="fail through the LB before anything moved.*not moved and the lock"):
        manager(monkeypatch, state, lb, status=503).run()
    drill = last_drill(state)
    assert lb.shifts == 0 and drill["outcome"] == "failed" and "restored" not in drill
    assert ledger_and_lock(state)[1] is None


def test_the_outcome_is_judged_from_what_was_measured() -> None:
    plan = {"to": "blue", "full": True}
    fine = {"rto_ms": 40.0, "observed_percent": 100.0, "failed": {"total": 0, "real": 0}}
    assert judge(plan, fine) == []
    assert judge(plan, {**fine, "rto_ms": None}) == [
        "the RTO was not reached: blue did not take every new request within measure_seconds"
    ]
    assert judge(plan, {**fine, "observed_percent": 0.0}) == ["blue served none of the probes during the hold"]
    assert judge(plan, {**fine, "failed": {"total": 3, "real": 2}}) == [
        "the LB logged 3 failed requests (2 real) during the drill"
    ]


def test_the_lb_is_compared_with_the_ledger() -> None:
    plan = {"live": "green", "to": "blue"}

    def placed(green, blue):
        servers = {"green": {"weight": green[0], "state": green[1]}, "blue": {"weight": blue[0], "state": blue[1]}}
        return {"api": servers}

    assert lb_disagrees(plan, placed((256, "ready"), (0, "drain"))) == []
    assert lb_disagrees(plan, placed((256, "ready"), (0, "ready"))) == []
    assert lb_disagrees(plan, placed((256, "ready"), (26, "drain"))) == []  # weight, but no new traffic
    assert len(lb_disagrees(plan, placed((0, "ready"), (256, "ready")))) == 2


def test_a_probe_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidParameters, match="user:password@ is refused") as refused:
        check_probe({"url": "http://ops:s3cret@127.0.0.1:8080", "path": "/"})
    assert "s3cret" not in refused.value.msg
