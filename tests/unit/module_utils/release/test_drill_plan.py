"""The drill's plan and its ledger record: the rollback's own rules decide (ledgers built by the real transitions,
as in test_release_plan.py), and release_state action=drill records a drill without touching the releases."""

from __future__ import annotations

import pytest
from test_release_plan import at, v1_live, v2_paused_after_10, v2_promoted

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.release import plan
from ansible_collections.switchyard.release.plugins.module_utils.release import transitions as tr
from ansible_collections.switchyard.release.plugins.module_utils.release.actions import apply_action
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError, parse_ledger
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import LockError, take_lock
from ansible_collections.switchyard.release.plugins.module_utils.release.params import validate_params
from ansible_collections.switchyard.release.plugins.module_utils.release.store import ACTION_DEFAULTS

DRILL = {"to": "blue", "from": "green", "percent": 10, "outcome": "done", "rto_ms": 42.5, "failed_requests": 0}


def test_a_partial_drill_goes_where_a_rollback_would_with_the_canary_weights() -> None:
    host = v2_promoted()
    got = plan.plan_drill(host.ledger, "free", "d1", percent=10)
    rollback = plan.plan_rollback(host.ledger, "x")
    assert got["refused"] is None and got["to"] == rollback["to"] == "blue" and got["from"] == "green"
    assert got["weights"] == {"green": 230, "blue": 26} and got["percent"] == 10 and not got["full"]
    assert got["version"] == "v1" and got["rollback_mode"] == "previous"


def test_a_full_drill_moves_every_new_request() -> None:
    got = plan.plan_drill(v2_promoted().ledger, "free", "d1", percent=10, full=True)
    assert got["weights"] == {"blue": 256, "green": 0} and got["percent"] == 100 and got["full"]


@pytest.mark.parametrize("percent", [0, 100, -5, "ten", None])
def test_a_partial_share_outside_1_to_99_is_refused_naming_the_option(percent) -> None:
    with pytest.raises(InvalidParameters, match="percent=.*1 to 99 %"):
        plan.plan_drill(v2_promoted().ledger, "free", "d1", percent=percent)


def test_no_previous_color_is_refused() -> None:
    got = plan.plan_drill(v1_live().ledger, "free", "d1")
    assert "no previous color to drill to" in got["refused"] and got["weights"] is None


def test_a_paused_release_is_refused_the_rollback_would_undo_it_not_rehearse() -> None:
    got = plan.plan_drill(v2_paused_after_10().ledger, "free", "d1")
    assert "is unfinished" in got["refused"] and got["weights"] is None


def test_a_running_release_holding_the_lock_is_refused() -> None:
    host = v2_promoted()
    host.take_lock("r3", 20)
    host.ledger = tr.begin(host.ledger, "r3", at(20), version="v3")
    got = plan.plan_drill(host.ledger, host.lock_state(21), "d1")
    assert "unfinished" in got["refused"]


def test_another_runs_lock_is_refused() -> None:
    host = v2_promoted()
    host.take_lock("c9", 20)
    assert "another run holds the release lock" in plan.plan_drill(host.ledger, host.lock_state(21), "d1")["refused"]


def test_after_a_contract_retired_the_previous_color_it_is_refused_and_says_so() -> None:
    host = v2_promoted()
    host.contract("c1", 30, ["0002"])
    got = plan.plan_drill(host.ledger, "free", "d1")
    assert "retired by a contract" in got["refused"] and "blue" in got["refused"]


def test_contract_migrations_since_the_previous_color_left_refuse_it_never_forced() -> None:
    host = v2_promoted()
    host.contract("c1", 30, ["0002"], retire=False)
    host.unlock("c1")
    got = plan.plan_drill(host.ledger, "free", "d1")
    assert got["refused"].startswith("Drill of shop to blue refused: contract migrations ran after it left")
    assert "A drill is never forced." in got["refused"] and "force_rollback" not in got["refused"]


def test_a_drill_after_a_rollback_goes_to_the_color_rolled_back_from() -> None:
    host = v2_promoted()
    host.take_lock("rb1", 20)
    host.ledger = tr.begin(host.ledger, "rb1", at(20), kind="rollback")
    host.ledger = tr.rollback(host.ledger, "rb1", "blue", at(21))
    got = plan.plan_drill(host.ledger, "free", "d1")
    assert (got["from"], got["to"], got["version"]) == ("blue", "green", "v2")


# --- the record -----------------------------------------------------------------------------------


def params(**overrides) -> dict:
    base = {**ACTION_DEFAULTS, "app": "shop", "path": "/x", "owner": "ops", "action": "drill", "release_id": "d1"}
    return validate_params({**base, "drill": dict(DRILL), **overrides})


def test_a_drill_is_recorded_apart_from_the_releases_and_releases_the_lock() -> None:
    host = v2_promoted()
    lock, _takeover = take_lock(None, "shop", "d1", "ops", 900, at(20), "h", 1, "token-of-d1")
    got = apply_action(host.ledger, lock, params(lock_token="token-of-d1"), at(21), "h", 1)
    assert got["lock"] is None and got["changed"]
    assert got["ledger"]["releases"] == host.ledger["releases"]
    assert (got["ledger"]["live"], got["ledger"]["previous"]) == ("green", "blue")
    assert got["ledger"]["colors"] == host.ledger["colors"] and got["ledger"]["weights"] == host.ledger["weights"]
    (drill,) = got["ledger"]["drills"]
    assert drill == {**DRILL, "id": "d1", "recorded_at": "2026-11-26T17:21:00Z"}


def test_the_same_record_again_changes_nothing_and_drills_are_trimmed() -> None:
    ledger = tr.record_drill(v2_promoted().ledger, {**DRILL, "id": "d1"}, at(21))
    assert tr.record_drill(ledger, {**DRILL, "id": "d1"}, at(22)) is ledger
    for n in range(5):
        ledger = tr.record_drill(ledger, {**DRILL, "id": f"n{n}"}, at(23 + n), history_limit=3)
    assert [d["id"] for d in ledger["drills"]] == ["n2", "n3", "n4"]


def test_under_another_runs_lock_the_record_is_refused() -> None:
    lock, _takeover = take_lock(None, "shop", "r9", "ops", 900, at(20), "h", 1, "token-of-r9")
    with pytest.raises(LockError, match="does not hold it"):
        apply_action(v2_promoted().ledger, lock, params(lock_token="token-of-d1x"), at(21), "h", 1)


@pytest.mark.parametrize(
    ("drill", "message"),
    [
        ({**DRILL, "to": "red"}, "drill.to"),
        ({**DRILL, "from": "blue"}, "to and from are both blue"),
        ({**DRILL, "outcome": "maybe"}, "drill.outcome"),
        ({**DRILL, "percent": 0}, "drill.percent"),
        ({**DRILL, "rto_ms": "fast"}, "drill.rto_ms"),
        ({**DRILL, "failed_requests": -1}, "drill.failed_requests"),
        ({**DRILL, "id": "other"}, "differs from release_id"),
        ("done", "expected a mapping"),
    ],
)
def test_a_bad_record_is_refused_before_anything_is_read(drill, message) -> None:
    with pytest.raises(LedgerError, match=message):
        params(drill=drill)


def test_a_ledger_whose_drills_are_not_a_list_is_damaged() -> None:
    with pytest.raises(LedgerError, match="drills is not a list"):
        parse_ledger('{"schema": 1, "app": "shop", "drills": {}}', "shop", "ledger.json")


def rolled_back_v2():
    """v2 promoted on green, then rolled back to blue (v1): green is previous, left by a rollback."""
    host = v2_promoted()
    ledger = tr.begin(host.ledger, "rb", at(30), kind="rollback", owner="ops@ctl")
    host.ledger = tr.rollback(ledger, "rb", "blue", at(31), weights={"blue": 256, "green": 0})
    return host


def test_a_drill_to_the_color_a_rollback_took_out_is_refused_unless_asked_for() -> None:
    host = rolled_back_v2()
    assert (host.ledger["live"], host.ledger["previous"]) == ("blue", "green")
    got = plan.plan_drill(host.ledger, "free", "d1")
    assert "green (v2) is the version an incident took out" in got["refused"] and "rollback rb" in got["refused"]
    assert "switchyard_drill_after_rollback=true" in got["refused"] and got["weights"] is None
    allowed = plan.plan_drill(host.ledger, "free", "d1", after_rollback=True)
    assert allowed["refused"] is None and allowed["to"] == "green"


def test_a_promotion_since_the_rollback_clears_it() -> None:
    host = rolled_back_v2()
    host.release("r3", "v3", 40)  # v3 to the idle green, promoted: blue (v1) is previous, left by a promotion
    got = plan.plan_drill(host.ledger, "free", "d1")
    assert got["refused"] is None and got["to"] == "blue", got
    assert plan.left_by_rollback(host.ledger, "blue") is None


def test_a_drill_record_may_say_running_but_not_anything_else() -> None:
    params = validate_params(
        {
            **ACTION_DEFAULTS,
            "app": "shop",
            "path": "/x",
            "owner": "o",
            "action": "drill",
            "release_id": "d1",
            "drill": {**DRILL, "id": "d1", "outcome": "running"},
        }
    )
    assert params["drill"]["outcome"] == "running"
    with pytest.raises(LedgerError, match="drill.outcome: 'half' is not one of running, done, failed"):
        validate_params(
            {
                **ACTION_DEFAULTS,
                "app": "shop",
                "path": "/x",
                "owner": "o",
                "action": "drill",
                "release_id": "d1",
                "drill": {**DRILL, "id": "d1", "outcome": "half"},
            }
        )
