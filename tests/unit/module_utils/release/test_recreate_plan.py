"""The recreate strategy in the plan and the ledger: switchyard_strategy checked, the live color recreated in place
(no second color), a failed recreate that only a recreate may follow, and a rollback after a recreate refused with
the command that recreates the previous digests - from ledgers built by the real transitions."""

from __future__ import annotations

import pytest
from test_release_plan import STEPS, Host, at, v1_live, v2_promoted

from ansible_collections.switchyard.release.plugins.module_utils.release import plan
from ansible_collections.switchyard.release.plugins.module_utils.release import transitions as tr
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.params import validate_params

V1_IMAGES = {"api": "127.0.0.1:5000/shop/api@sha256:" + "1" * 64}
V2_IMAGES = {"api": "127.0.0.1:5000/shop/api@sha256:" + "2" * 64}


def recreate(host: Host, rid: str, version: str, start: float, end: str = "promote") -> dict:
    """recreate.yml's records: begin (strategy recreate), stop (deploying, what it replaces), deploy, then the
    recreate step and the promotion - or the failure after the stop (end="fail"), before the stop step (end="early"),
    or after it but before compose_project changed anything (end="untouched")."""
    got = plan.plan_release(host.ledger, host.lock_state(start), version, STEPS, rid, strategy="recreate")
    host.take_lock(rid, start)
    host.ledger = tr.begin(
        host.ledger, rid, at(start), owner="ops", version=version, images=V2_IMAGES, strategy="recreate"
    )
    if end == "early":
        host.ledger = tr.fail(host.ledger, rid, at(start + 1), reason="the page could not be checked")
        host.unlock(rid)
        return got
    host.step(rid, {"name": "stop", "deploying": True, "replaced": got["recreate"]["replaces"]}, start + 1)
    if end in ("fail", "untouched"):
        # untouched: compose_project failed before it changed anything (touched false), the page went off again.
        reason = "never healthy" if end == "fail" else "staged files missing"
        host.ledger = tr.fail(host.ledger, rid, at(start + 2), reason=reason, untouched=end == "untouched")
        host.unlock(rid)
        return got
    host.step(rid, {"name": "deploy", "deployed": True, "images": V2_IMAGES}, start + 2)
    host.step(rid, {"name": "recreate", "outage_ms": 8200.5, "health_s": 7.9}, start + 3)
    host.ledger = tr.promote(host.ledger, rid, at(start + 3), color=got["candidate"], weights=got["final_weights"])
    host.unlock(rid)
    return got


def v1_with_digests() -> Host:
    host = v1_live()
    host.ledger["colors"]["blue"]["images"] = dict(V1_IMAGES)
    return host


def test_an_unknown_strategy_is_refused_naming_the_variable_and_the_allowed_values() -> None:
    host = v1_live()
    with pytest.raises(
        LedgerError, match=r"switchyard_strategy='bluish' .* allowed values are canary, bluegreen, recreate, ab"
    ):
        plan.plan_release(host.ledger, host.lock_state(20), "v2", STEPS, "r2", strategy="bluish")
    params = {"app": "shop", "action": "plan", "lock_ttl": 900, "plan": {"kind": "release", "strategy": "ab-test"}}
    with pytest.raises(LedgerError, match="switchyard_strategy='ab-test'"):
        validate_params(params)
    begin = {"app": "shop", "action": "begin", "release_id": "r2", "take_lock": True, "lock_ttl": 9, "strategy": "x"}
    with pytest.raises(LedgerError, match="allowed values are canary, bluegreen, recreate, ab"):
        validate_params(begin)


def test_a_recreate_plans_the_live_color_itself_and_says_what_it_does() -> None:
    host = v1_with_digests()
    got = plan.plan_release(host.ledger, host.lock_state(20), "v2", STEPS, "r2", strategy="recreate")
    assert got["strategy"] == "recreate" and got["refused"] is None and not got["noop"]
    assert got["candidate"] == "blue" == got["live"] and got["steps"] == [] and got["weights_per_step"] == []
    assert got["final_weights"] == {"blue": 256, "green": 0}
    recreate_plan = got["recreate"]
    assert recreate_plan["color"] == "blue" and recreate_plan["project"] == "shop-blue"
    assert recreate_plan["replaces"]["version"] == "v1" and recreate_plan["replaces"]["images"] == V1_IMAGES
    # Staged (files beside the color, images pulled) while v1 serves: the outage holds only stop, start, page off.
    actions = recreate_plan["actions"]
    assert [a.split()[0] for a in actions] == ["stage", "maintenance", "stop", "start", "maintenance"]
    assert actions[0] == (
        "stage v2 beside shop-blue (its files in blue.staged/, its images pulled) while v1 still serves"
    )
    assert "(the staged files put in place)" in actions[3]
    canary = plan.plan_release(host.ledger, host.lock_state(20), "v2", STEPS, "r2")
    assert canary["strategy"] == "canary" and canary["recreate"] is None and canary["candidate"] == "green"


def test_a_first_release_with_recreate_is_the_usual_first_release() -> None:
    host = Host()
    got = plan.plan_release(host.ledger, host.lock_state(0), "v1", STEPS, "r1", strategy="recreate")
    assert got["recreate"] is None and got["candidate"] == "blue" and got["steps"] == [100]


def test_the_ledger_records_a_recreate_on_the_live_color_and_a_rerun_is_a_noop() -> None:
    host = v1_with_digests()
    recreate(host, "r2", "v2", 20)
    ledger = host.ledger
    entry = ledger["releases"][-1]
    assert entry["strategy"] == "recreate" and entry["outcome"] == "promoted" and entry["color"] == "blue"
    assert entry["from_color"] == "blue"
    assert ledger["live"] == "blue" and ledger["previous"] is None, "no second color"
    assert ledger["colors"]["blue"]["version"] == "v2" and ledger["colors"]["blue"]["state"] == "live"
    assert ledger["colors"]["blue"]["images"] == V2_IMAGES
    assert plan.plan_release(ledger, host.lock_state(30), "v2", STEPS, "r3", strategy="recreate")["noop"]


def test_a_canary_release_still_refuses_to_deploy_the_live_color() -> None:
    host = v1_live()
    host.take_lock("r2", 20)
    with pytest.raises(LedgerError, match="which is live"):
        tr.begin(host.ledger, "r2", at(20), version="v2", color="blue")


def test_a_failed_recreate_leaves_the_color_failed_and_only_a_recreate_may_follow() -> None:
    host = v1_with_digests()
    recreate(host, "r2", "v2", 20, end="fail")
    ledger = host.ledger
    assert ledger["live"] == "blue" and ledger["colors"]["blue"]["state"] == "failed"
    assert ledger["releases"][-1]["outcome"] == "failed" and host.lock is None
    canary = plan.plan_release(ledger, host.lock_state(30), "v3", STEPS, "r3")
    assert canary["refused"] and "old version's containers are gone" in canary["refused"]
    assert "switchyard_strategy=recreate" in canary["refused"]
    again = plan.plan_release(ledger, host.lock_state(30), "v2", STEPS, "r3", strategy="recreate")
    assert again["refused"] is None and not again["noop"], "the same version again is not a noop: nothing runs"
    recreate(host, "r3", "v2", 30)
    assert host.ledger["colors"]["blue"]["state"] == "live" and host.ledger["releases"][-1]["outcome"] == "promoted"


def test_a_recreate_that_failed_before_the_stop_changes_nothing_for_the_next_release() -> None:
    host = v1_with_digests()
    recreate(host, "r2", "v2", 20, end="early")
    assert host.ledger["colors"]["blue"]["state"] == "live"
    assert plan.plan_release(host.ledger, host.lock_state(30), "v2", STEPS, "r3")["refused"] is None


def test_a_recreate_that_failed_untouched_after_the_stop_step_gives_the_color_its_record_back() -> None:
    host = v1_with_digests()
    before = dict(host.ledger["colors"]["blue"])
    recreate(host, "r2", "v2", 20, end="untouched")
    ledger = host.ledger
    # What runs is v1, as before: not v2 `failed` (which would refuse every strategy but recreate).
    assert ledger["colors"]["blue"] == before and ledger["live"] == "blue"
    assert ledger["releases"][-1]["outcome"] == "failed" and host.lock is None
    assert plan.plan_release(ledger, host.lock_state(30), "v3", STEPS, "r3")["refused"] is None
    again = plan.plan_release(ledger, host.lock_state(30), "v2", STEPS, "r3", strategy="recreate")
    assert again["recreate"]["replaces"]["version"] == "v1" and again["recreate"]["replaces"]["images"] == V1_IMAGES


def test_untouched_changes_nothing_for_a_release_that_is_not_a_recreate() -> None:
    host = v1_with_digests()
    host.release("r2", "v2", 20, canary=(10,), end="pause", pause_after=10)
    failed = tr.fail(host.ledger, "r2", at(40), reason="x", untouched=True)
    assert failed["colors"]["green"]["state"] == "failed"


@pytest.mark.parametrize("end", ["promote", "fail"])
def test_rollback_after_a_recreate_is_refused_with_the_command_that_recreates_the_previous_digests(end) -> None:
    host = v1_with_digests()
    recreate(host, "r2", "v2", 20, end=end)
    got = plan.plan_rollback(host.ledger, "rb1")
    assert got["mode"] == "recreate" and got["weights"] is None and got["version"] == "v1"
    assert "recreated blue in place" in got["refused"] and "nothing warm to switch back to" in got["refused"]
    assert "-e switchyard_strategy=recreate -e switchyard_version=v1" in got["refused"]
    assert V1_IMAGES["api"] in got["refused"]


def test_rollback_after_a_canary_that_followed_a_recreate_is_the_usual_one() -> None:
    host = v1_with_digests()
    recreate(host, "r2", "v2", 20)
    host.release("r3", "v3", 40, canary=(10,))
    got = plan.plan_rollback(host.ledger, "rb1")
    assert got["mode"] == "previous" and got["to"] == "blue" and got["refused"] is None


def test_a_paused_canary_refuses_a_recreate() -> None:
    host = v2_promoted()
    host.release("r3", "v3", 40, canary=(10,), end="pause", pause_after=10)
    got = plan.plan_release(host.ledger, host.lock_state(50), "v3", STEPS, "r4", strategy="recreate")
    assert got["refused"] and "paused" in got["refused"]
