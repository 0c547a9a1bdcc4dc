"""The plans of a release, a rollback and a contract, decided from ledgers built by the real
transitions (begin, record_step, promote, rollback, retire) under the real lock, at fixed times."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.release import plan
from ansible_collections.switchyard.release.plugins.module_utils.release import transitions as tr
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import empty_ledger, find_release
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import drop_lock, lock_state, take_lock
from ansible_collections.switchyard.release.plugins.module_utils.release.weights import canary_weights

T0 = datetime(2026, 11, 26, 17, 0, 0, tzinfo=timezone.utc)  # noqa: UP017 (the module_utils target 3.8)
OWNER = "ops@ctl"
LOCK_TTL = 3600
STEPS = [10, 25, 50, 100]
WINDOW = 3600


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(minutes: float) -> str:
    return at(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")


class Host:
    """The ledger and the lock of app shop on one Docker host, changed only by the transitions and
    the lock's decisions, the way the release, rollback and contract roles change them."""

    def __init__(self) -> None:
        self.ledger = empty_ledger("shop")
        self.lock: dict | None = None

    def lock_state(self, minutes: float) -> str:
        return lock_state(self.lock, at(minutes))

    def take_lock(self, rid: str, minutes: float) -> None:
        self.lock, takeover = take_lock(
            self.lock, "shop", rid, OWNER, LOCK_TTL, at(minutes), "dockerhost", 4242, f"token-of-{rid}"
        )
        if takeover:
            self.ledger = tr.record_takeover(self.ledger, takeover, at(minutes))

    def unlock(self, rid: str) -> None:
        self.lock = drop_lock(self.lock, "shop", f"token-of-{rid}")

    def step(self, rid: str, step: dict, minutes: float) -> None:
        self.ledger = tr.record_step(self.ledger, rid, step, at(minutes))

    def release(
        self,
        rid: str,
        version: str,
        start: float,
        canary: tuple = (10,),
        end: str = "promote",
        pause_after: int | None = None,
        level: int | None = 3,
    ) -> None:
        """Release version from minute start: lock, begin, deploy, the canary steps, then
        end="promote" (promote step with the schema level, promote, unlock), "pause" (pause step
        after pause_after, unlock) or "killed" (the run dies holding the lock)."""
        self.take_lock(rid, start)
        self.ledger = tr.begin(self.ledger, rid, at(start), owner=OWNER, version=version)
        entry = find_release(self.ledger, rid)
        color, live = entry["color"], self.ledger["live"]
        self.step(rid, {"name": "deploy", "deployed": True}, start + 1)
        minute = start + 2
        for percent in canary if live else ():
            weights = canary_weights(percent, live, color)
            self.step(rid, {"name": f"canary-{percent}", "weights": weights}, minute)
            minute += 1
        if end == "pause":
            self.step(rid, {"name": "pause", "after": pause_after}, minute)
            self.unlock(rid)
        elif end == "promote":
            promote_step = {"name": "promote"}
            if level is not None:
                promote_step["migrations_level"] = level
            self.step(rid, promote_step, minute)
            final = canary_weights(100, live, color)
            self.ledger = tr.promote(self.ledger, rid, at(minute), color=color, weights=final)
            self.unlock(rid)

    def contract(self, rid: str, start: float, contracted: list, retire: bool = True) -> None:
        """The contract role: lock, begin (kind contract), the contract migrations step, then the
        old color retired (unless the run dies before that, holding the lock)."""
        self.take_lock(rid, start)
        self.ledger = tr.begin(self.ledger, rid, at(start), kind="contract", owner=OWNER)
        self.step(rid, {"name": "contract", "migrations_contracted": contracted}, start + 1)
        if retire:
            self.ledger = tr.retire(self.ledger, rid, self.ledger["previous"], at(start + 2))
            self.unlock(rid)


def v1_live() -> Host:
    """v1 released on blue (minutes 0-3, schema level 2)."""
    host = Host()
    host.release("r1", "v1", 0, level=2)
    return host


def v2_promoted() -> Host:
    """v1 on blue, then v2 canaried and promoted on green at minute 15 (level 3): blue is previous since."""
    host = v1_live()
    host.release("r2", "v2", 10, canary=(10, 25, 50))
    assert host.ledger["live"] == "green" and host.ledger["previous"] == "blue"
    assert host.ledger["colors"]["blue"]["demoted_at"] == stamp(15)
    return host


def v2_paused_after_10() -> Host:
    """v1 live on blue; v2 on green paused for an approval after its 10 % step (lock released)."""
    host = v1_live()
    host.release("r2", "v2", 10, canary=(10,), end="pause", pause_after=10)
    return host


# --- plan_release --------------------------------------------------------------------------------


def test_first_release_goes_to_blue_in_one_step() -> None:
    host = Host()
    got = plan.plan_release(host.ledger, host.lock_state(0), "v1", STEPS, "new-id")
    assert got["id"] == "new-id" and got["kind"] == "release" and got["version"] == "v1"
    assert got["live"] == "" and got["candidate"] == "blue"
    assert got["steps"] == [100]
    assert got["weights_per_step"] == [{"step": 100, "weights": {"blue": 256}}]
    assert got["final_weights"] == {"blue": 256}
    assert not got["noop"] and not got["resume"] and got["resume_after_step"] is None
    assert got["refused"] is None and got["abandons"] is None and got["pause_after"] is None


def test_normal_release_canaries_the_idle_color() -> None:
    host = v1_live()
    got = plan.plan_release(host.ledger, host.lock_state(20), "v2", STEPS, "new-id", migrations_level="3")
    assert got["id"] == "new-id" and got["live"] == "blue" and got["candidate"] == "green"
    assert got["steps"] == STEPS
    # In step order, as a list: a mapping keyed by percent would be shown sorted as strings (10, 100, 25, 50).
    assert got["weights_per_step"] == [
        {"step": 10, "weights": {"blue": 230, "green": 26}},
        {"step": 25, "weights": {"blue": 192, "green": 64}},
        {"step": 50, "weights": {"blue": 128, "green": 128}},
        {"step": 100, "weights": {"blue": 0, "green": 256}},
    ]
    assert got["final_weights"] == {"blue": 0, "green": 256}
    assert got["migrations_level"] == 3
    assert not got["noop"] and not got["resume"] and got["refused"] is None and got["abandons"] is None


def test_same_version_again_is_a_noop() -> None:
    host = v1_live()
    got = plan.plan_release(host.ledger, host.lock_state(20), "v1", STEPS, "new-id")
    assert got["noop"] is True and got["refused"] is None and not got["resume"]


def test_paused_release_resumes_after_its_step() -> None:
    host = v2_paused_after_10()
    assert host.lock_state(20) == "free"
    got = plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id")
    assert got["resume"] is True and got["id"] == "r2"
    assert got["candidate"] == "green" and got["live"] == "blue"
    assert got["steps"] == [25, 50, 100]
    assert got["resume_after_step"] == 10
    assert [s["step"] for s in got["weights_per_step"]] == [25, 50, 100]
    assert got["refused"] is None and got["abandons"] is None and not got["noop"]


def test_a_resumed_release_keeps_the_digests_its_candidate_runs() -> None:
    host = v2_paused_after_10()
    began = {"api": "127.0.0.1:5000/switchyard/demo-app@sha256:" + "2" * 64}
    deployed = {**began, "worker": "127.0.0.1:5000/switchyard/worker@sha256:" + "3" * 64}
    find_release(host.ledger, "r2")["images"] = began
    assert plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id")["resume_images"] == began
    host.ledger["colors"]["green"]["images"] = deployed  # the deploy step: every service, as it runs
    assert plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id")["resume_images"] == deployed
    assert plan.plan_release(v1_live().ledger, "free", "v2", STEPS, "new-id")["resume_images"] == {}


def test_paused_release_refuses_another_version() -> None:
    host = v2_paused_after_10()
    got = plan.plan_release(host.ledger, host.lock_state(20), "v3", STEPS, "new-id")
    assert got["refused"] is not None
    assert "v2 is paused after the 10 % step" in got["refused"]
    assert "Release r2 of shop" in got["refused"] and "before releasing v3" in got["refused"]


def test_paused_release_whose_lock_is_held_is_not_paused() -> None:
    host = v1_live()
    # The pause step is recorded, but the run still holds the lock (it has not unlocked yet).
    host.take_lock("r2", 10)
    host.ledger = tr.begin(host.ledger, "r2", at(10), owner=OWNER, version="v2")
    host.step("r2", {"name": "deploy", "deployed": True}, 11)
    host.step("r2", {"name": "pause", "after": 10}, 12)
    assert host.lock_state(13) == "held"
    assert plan.paused_after(plan.last_release(host.ledger), "held") is None
    got = plan.plan_release(host.ledger, "held", "v2", STEPS, "new-id")
    assert got["resume"] is False and got["id"] == "new-id" and got["resume_after_step"] is None
    assert got["steps"] == STEPS


def test_killed_release_is_abandoned_by_the_next_one() -> None:
    host = v1_live()
    host.release("r2", "v2", 10, canary=(10,), end="killed")
    assert plan.last_release(host.ledger)["outcome"] == "running"
    assert host.lock_state(200) == "expired"
    got = plan.plan_release(host.ledger, host.lock_state(200), "v2", STEPS, "r3")
    assert got["resume"] is False and got["id"] == "r3" and got["abandons"] == "r2"
    assert got["candidate"] == "green" and got["steps"] == STEPS and not got["noop"]
    # The real document agrees: taking the expired lock and beginning r3 abandons r2.
    host.take_lock("r3", 200)
    host.ledger = tr.begin(host.ledger, "r3", at(200), owner=OWNER, version="v2")
    assert find_release(host.ledger, "r2")["outcome"] == "abandoned"


def test_stop_after_step_pauses_there() -> None:
    host = v1_live()
    got = plan.plan_release(host.ledger, host.lock_state(20), "v2", STEPS, "new-id", stop_after_step=25)
    assert got["pause_after"] == 25 and got["steps"] == [10, 25]
    assert [s["step"] for s in got["weights_per_step"]] == [10, 25]
    assert got["final_weights"] == {"blue": 0, "green": 256}


def test_stop_after_step_is_ignored_on_a_first_release() -> None:
    host = Host()
    got = plan.plan_release(host.ledger, host.lock_state(0), "v1", STEPS, "new-id", stop_after_step=25)
    assert got["pause_after"] is None and got["steps"] == [100]


# --- plan_rollback -------------------------------------------------------------------------------


def test_rollback_after_a_promotion_goes_to_previous() -> None:
    host = v2_promoted()
    got = plan.plan_rollback(host.ledger, "rb-id")
    assert got["mode"] == "previous" and got["kind"] == "rollback" and got["id"] == "rb-id"
    assert got["to"] == "blue" and got["away"] == "green" and got["version"] == "v1"
    assert got["undoes"] == "r2"
    assert got["weights"] == {"blue": 256, "green": 0}
    assert got["refused"] is None
    # The real document agrees: a kind=rollback release to `to` swaps live and previous.
    ledger = tr.begin(host.ledger, "rb-id", at(30), kind="rollback", owner=OWNER)
    ledger = tr.rollback(ledger, "rb-id", got["to"], at(31), weights=got["weights"])
    assert ledger["live"] == "blue" and ledger["previous"] == "green"


def test_rollback_during_a_paused_canary_takes_the_candidate_out() -> None:
    host = v2_paused_after_10()
    got = plan.plan_rollback(host.ledger, "rb-id")
    assert got["mode"] == "canary"
    assert got["to"] == "blue" and got["away"] == "green" and got["version"] == "v1"
    assert got["undoes"] == "r2"
    assert got["weights"] == {"blue": 256, "green": 0}
    assert got["refused"] is None


def test_rollback_with_an_empty_ledger_is_refused() -> None:
    got = plan.plan_rollback(Host().ledger, "rb-id")
    assert got["mode"] == "none" and got["weights"] is None
    assert got["refused"].startswith("Nothing to roll back for shop")


def test_rollback_after_contract_migrations_is_refused_unless_forced() -> None:
    host = v2_promoted()
    # A contract ran its migrations at minute 31 (after blue left at 15) and died before retiring blue.
    host.contract("c1", 30, ["0002"], retire=False)
    assert host.ledger["migrations"]["last_contract_at"] == stamp(31)
    assert host.ledger["previous"] == "blue"
    got = plan.plan_rollback(host.ledger, "rb-id")
    assert got["mode"] == "previous" and got["weights"] is None
    assert "contract migrations ran after it left" in got["refused"]
    assert "switchyard_force_rollback" in got["refused"]
    forced = plan.plan_rollback(host.ledger, "rb-id", force=True)
    assert forced["refused"] is None and forced["weights"] == {"blue": 256, "green": 0}


def test_rollback_to_a_retired_color_is_refused() -> None:
    host = v2_promoted()
    host.contract("c1", 100, ["0002"])
    assert host.ledger["colors"]["blue"]["state"] == "retired"
    assert host.ledger["previous"] is None, "retire drops previous"
    got = plan.plan_rollback(host.ledger, "rb-id")
    assert got["mode"] == "none" and got["weights"] is None
    assert got["refused"].startswith("Nothing to roll back for shop")


def test_rollback_to_a_previous_marked_retired_is_refused() -> None:
    """The transitions never leave a retired color as previous; a ledger edited by hand may."""
    host = v2_promoted()
    host.contract("c1", 100, ["0002"])
    ledger = copy.deepcopy(host.ledger)
    ledger["previous"] = "blue"
    got = plan.plan_rollback(ledger, "rb-id", force=True)
    assert got["refused"] == "Rollback of shop to blue refused: that color was retired by a contract."
    assert got["weights"] is None


# --- plan_contract -------------------------------------------------------------------------------


def test_contract_inside_the_rollback_window_is_refused() -> None:
    host = v2_promoted()
    got = plan.plan_contract(host.ledger, at(20), "c-id", WINDOW)
    assert got["kind"] == "contract" and got["id"] == "c-id"
    assert got["live"] == "green" and got["old"] == "blue"
    assert got["demoted_at"] == stamp(15) and got["window_ends"] == stamp(75)
    assert got["level"] == "3", "the migrations_level of the live release's promote step"
    assert got["unfinished"] is False
    assert f"stays ready for rollback until {stamp(75)}" in got["refused"]
    assert "switchyard_rollback_window=3600 s" in got["refused"]


def test_contract_after_the_rollback_window_may_run() -> None:
    host = v2_promoted()
    got = plan.plan_contract(host.ledger, at(75), "c-id", WINDOW)
    assert got["refused"] is None
    assert got["old"] == "blue" and got["level"] == "3"


def test_contract_during_an_unfinished_release_is_refused() -> None:
    host = v2_promoted()
    host.release("r3", "v3", 100, canary=(10,), end="pause", pause_after=10)
    got = plan.plan_contract(host.ledger, at(200), "c-id", WINDOW)
    assert got["unfinished"] is True
    assert got["refused"].startswith("A release of shop is unfinished")


def test_contract_without_the_schema_level() -> None:
    host = Host()
    host.release("r1", "v1", 0, level=None)
    host.release("r2", "v2", 10, level=None)
    assert plan.live_schema_level(host.ledger) == ""
    refused = plan.plan_contract(host.ledger, at(200), "c-id", WINDOW, migrations=True)
    assert refused["level"] == ""
    assert "does not say which migrations the live color (green)" in refused["refused"]
    allowed = plan.plan_contract(host.ledger, at(200), "c-id", WINDOW, migrations=False)
    assert allowed["refused"] is None and allowed["old"] == "blue"


# --- release_id ----------------------------------------------------------------------------------


def test_release_id_formats() -> None:
    assert plan.release_id(T0, "1a2b") == "20261126T170000Z-1a2b"
    assert plan.release_id(T0, "1a2b", "rollback") == "20261126T170000Z-rollback-1a2b"


# -- the failure paths of the emergency tools -------------------------------------------------------


def test_a_second_pause_of_one_release_is_still_a_pause() -> None:
    """Each pause is its own step (pause-<percent>): after the second, another version is refused."""
    host = v1_live()
    host.release("r2", "v2", 10, canary=(10,), end="pause", pause_after=10)
    host.take_lock("r2", 20)
    host.step("r2", {"name": "canary-25", "weights": canary_weights(25, "blue", "green")}, 21)
    host.step("r2", {"name": "pause-25", "after": 25}, 22)
    host.unlock("r2")
    refused = plan.plan_release(host.ledger, "free", "v3", STEPS, "r3")
    assert "is paused after the 25 % step" in refused["refused"]
    resumed = plan.plan_release(host.ledger, "free", "v2", STEPS, "r3")
    assert resumed["resume"] and resumed["id"] == "r2" and resumed["steps"] == [50, 100]


def test_a_rollback_that_could_not_move_the_traffic_is_retried_to_the_same_color() -> None:
    """A rollback of a paused canary abandons the release, then its LB move fails: the next rollback
    finishes the same move instead of finding nothing to roll back."""
    host = v2_paused_after_10()
    first = plan.plan_rollback(host.ledger, "rb1")
    assert (first["mode"], first["to"], first["away"]) == ("canary", "blue", "green")
    host.take_lock("rb1", 30)
    host.ledger = tr.begin(host.ledger, "rb1", at(30), kind="rollback", owner=OWNER, color="blue", from_color="green")
    host.ledger = tr.fail(host.ledger, "rb1", at(31), reason="cannot connect to the HAProxy socket")
    host.unlock("rb1")
    retry = plan.plan_rollback(host.ledger, "rb2")
    assert retry["refused"] is None, retry
    assert (retry["mode"], retry["to"], retry["away"], retry["undoes"]) == ("retry", "blue", "green", "rb1")
    assert retry["weights"] == {"blue": 256, "green": 0}


def test_a_release_whose_restore_failed_is_rolled_back_to_the_live_color() -> None:
    """The gate failed and putting traffic back failed too: the ledger keeps the canary's weights, and
    rollback.yml sends everything to the live color (not to the color before it)."""
    host = v2_promoted()  # green live, blue previous
    host.take_lock("r3", 40)
    host.ledger = tr.begin(host.ledger, "r3", at(40), owner=OWNER, version="v3")
    host.step("r3", {"name": "deploy", "deployed": True}, 41)
    host.step("r3", {"name": "canary-10", "weights": canary_weights(10, "green", "blue")}, 42)
    host.ledger = tr.fail(host.ledger, "r3", at(43), reason="gate said rollback; putting traffic back failed")
    host.unlock("r3")
    rolled = plan.plan_rollback(host.ledger, "rb3")
    assert (rolled["mode"], rolled["to"], rolled["away"]) == ("canary", "green", "blue"), rolled


def test_contract_retires_a_rolled_back_candidate_too() -> None:
    """v3 paused at 10 % on blue (live green v2, previous blue cleared by the deploy), then rolled back:
    blue still runs v3's older or newer code, so the contract retires it rather than contracting under it."""
    host = v2_promoted()
    host.release("r3", "v3", 100, canary=(10,), end="pause", pause_after=10)
    host.take_lock("rb", 110)
    host.ledger = tr.begin(host.ledger, "rb", at(110), kind="rollback", owner=OWNER, color="green")
    host.ledger = tr.rollback(host.ledger, "rb", "green", at(111))
    host.unlock("rb")
    assert host.ledger["live"] == "green" and host.ledger["previous"] is None
    assert host.ledger["colors"]["blue"]["state"] == "candidate"
    got = plan.plan_contract(host.ledger, at(112), "c-id", WINDOW)
    assert got["refused"] is None, got["refused"]
    assert (got["old"], got["old_state"], got["old_version"]) == ("blue", "candidate", "v3")
    assert got["window_ends"] == "", "a candidate that was never live has no rollback window"


def test_contract_with_no_idle_color_retires_nothing() -> None:
    host = v1_live()
    got = plan.plan_contract(host.ledger, at(100), "c-id", WINDOW)
    assert got["old"] == "" and got["refused"] is None
    host = v2_promoted()
    host.contract("c1", 80, ["0002"])
    assert host.ledger["colors"]["blue"]["state"] == "retired"
    assert plan.plan_contract(host.ledger, at(90), "c-id", WINDOW)["old"] == ""


def test_a_release_abandoned_by_the_rollbacks_own_forced_lock_is_still_rolled_back_to_live() -> None:
    """rollback.yml -e switchyard_force_lock=true during a 10 % step: taking the lock marks the running
    release abandoned before the rollback module plans; it must still undo that release (to live)."""
    host = v2_paused_after_10()
    host.take_lock("r2", 30)  # the release resumed and holds its lock again...
    host.lock, takeover = take_lock(
        host.lock, "shop", "rb", OWNER, LOCK_TTL, at(31), "dockerhost", 4242, "token-of-rb", force=True
    )
    host.ledger = tr.record_takeover(host.ledger, takeover, at(31))
    assert find_release(host.ledger, "r2")["outcome"] == "abandoned"
    got = plan.plan_rollback(host.ledger, "rb")
    assert (got["mode"], got["to"], got["away"], got["undoes"]) == ("canary", "blue", "green", "r2")
    # Once that rollback is done, the abandoned release is dealt with: the next rollback undoes the
    # last promotion instead of repeating itself.
    host.ledger = tr.begin(host.ledger, "rb", at(32), kind="rollback", owner=OWNER, color="blue", from_color="green")
    host.ledger = tr.rollback(host.ledger, "rb", "blue", at(33))
    host.unlock("rb")
    assert plan.plan_rollback(host.ledger, "rb2")["mode"] != "canary"


def test_deploying_over_the_previous_color_stops_it_being_a_rollback_target() -> None:
    """v3 is being deployed on blue, the previous color (v1): its containers are replaced, so even if
    the deploy fails the ledger must not offer a rollback to "v1" on blue."""
    host = v2_promoted()
    host.take_lock("r3", 100)
    host.ledger = tr.begin(host.ledger, "r3", at(100), owner=OWNER, version="v3")
    host.step("r3", {"name": "deploying", "deploying": True}, 101)
    assert host.ledger["previous"] is None and host.ledger["colors"]["blue"]["state"] == "deploying"
    host.ledger = tr.fail(host.ledger, "r3", at(102), reason="deploy: unhealthy")
    host.unlock("r3")
    assert host.ledger["colors"]["blue"]["state"] == "failed" and host.ledger["colors"]["blue"]["version"] == "v3"
    assert plan.plan_rollback(host.ledger, "rb")["refused"].startswith("Nothing to roll back")


def test_a_failed_release_whose_restore_failed_is_stranded_whatever_the_weights_say() -> None:
    """The restore could not read one route: the ledger's weights may show the candidate at 0 on the
    others, but the recorded failed restore still makes rollback.yml put everything back on live."""
    host = v2_promoted()
    host.release("r3", "v1", 100, canary=(10,), end="killed")
    host.step("r3", {"name": "restore", "failed": True, "routes_failed": ["web"]}, 110)
    host.ledger = tr.fail(host.ledger, "r3", at(111), reason="restore failed", weights={"blue": 0, "green": 256})
    host.unlock("r3")
    got = plan.plan_rollback(host.ledger, "rb")
    assert (got["mode"], got["to"], got["away"]) == ("canary", "green", "blue")


# --- strategies ----------------------------------------------------------------------------------


def ab_running(share: int = 20) -> Host:
    """v1 live on blue; an A/B experiment of v2 on green for share % of users, judged once, lock released."""
    host = v1_live()
    host.take_lock("r2", 10)
    host.ledger = tr.begin(
        host.ledger,
        "r2",
        at(10),
        owner=OWNER,
        version="v2",
        strategy="ab",
        experiment={"share": share, "key": "cookie SV"},
    )
    host.step("r2", {"name": "deploy", "deployed": True}, 11)
    host.step("r2", {"name": f"canary-{share}", "weights": canary_weights(share, "blue", "green")}, 12)
    host.step("r2", {"name": f"pause-{share}", "after": share}, 13)
    host.unlock("r2")
    return host


def test_bluegreen_switches_once_and_the_gate_judges_the_switch() -> None:
    got = plan.plan_release(v1_live().ledger, "free", "v2", STEPS, "new-id", strategy="bluegreen")
    assert got["refused"] is None and got["strategy"] == "bluegreen"
    assert got["steps"] == [100] and got["judged_steps"] == [100] and got["pause_after"] is None
    assert got["weights_per_step"] == [{"step": 100, "weights": {"blue": 0, "green": 256}}]
    assert got["experiment"] is None and got["hold_keeps_going"] is False


def test_a_canary_judges_every_step_below_100() -> None:
    got = plan.plan_release(v1_live().ledger, "free", "v2", STEPS, "new-id")
    assert got["strategy"] == "canary" and got["judged_steps"] == [10, 25, 50]
    paused = plan.plan_release(v1_live().ledger, "free", "v2", STEPS, "new-id", stop_after_step=25)
    assert paused["steps"] == [10, 25] and paused["judged_steps"] == [10, 25] and paused["pause_after"] == 25


def test_a_first_release_is_whole_whatever_the_strategy() -> None:
    for strategy in ("bluegreen", "ab"):
        got = plan.plan_release(
            Host().ledger, "free", "v1", STEPS, "new-id", strategy=strategy, ab_percent=10, ab_key="cookie SV"
        )
        assert got["refused"] is None and got["steps"] == [100] and got["judged_steps"] == []
        assert got["experiment"] is None and got["pause_after"] is None


def test_ab_starts_an_experiment_at_its_share_and_pauses_there() -> None:
    got = plan.plan_release(
        v1_live().ledger, "free", "v2", STEPS, "new-id", strategy="ab", ab_percent=20, ab_key="cookie SV"
    )
    assert got["refused"] is None and got["strategy"] == "ab"
    assert got["steps"] == [20] and got["judged_steps"] == [20] and got["pause_after"] == 20
    assert got["experiment"] == {"share": 20, "key": "cookie SV"} and got["hold_keeps_going"] is True


def test_a_running_experiment_is_observed_again_or_promoted_whatever_this_run_asks_for() -> None:
    host = ab_running(20)
    # The run's own defaults (canary, another share) do not change the experiment it resumes.
    again = plan.plan_release(
        host.ledger, "free", "v2", STEPS, "new-id", strategy="canary", ab_percent=50, ab_key="cookie SV"
    )
    assert again["refused"] is None and again["resume"] is True and again["id"] == "r2"
    assert again["strategy"] == "ab" and again["steps"] == [20] and again["pause_after"] == 20
    assert again["experiment"] == {"share": 20, "key": "cookie SV"}
    promoted = plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id", ab_promote=True, ab_key="cookie SV")
    assert promoted["refused"] is None and promoted["steps"] == [100] and promoted["judged_steps"] == []
    assert promoted["pause_after"] is None and promoted["final_weights"] == {"blue": 0, "green": 256}


def test_another_version_during_an_experiment_is_refused_with_how_to_end_it() -> None:
    got = plan.plan_release(ab_running(20).ledger, "free", "v3", STEPS, "new-id")
    assert "An A/B experiment of shop is running" in got["refused"]
    assert "switchyard_ab_promote=true" in got["refused"] and "rollback.yml" in got["refused"]


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"strategy": "bluegreen", "stop_after_step": 10}, "switchyard_stop_after_step=10 pauses a canary"),
        ({"strategy": "ab", "ab_percent": 0, "ab_key": "cookie SV"}, "switchyard_ab_percent=0: the share"),
        ({"strategy": "ab", "ab_percent": 100, "ab_key": "cookie SV"}, "an integer from 1 to 99"),
        ({"strategy": "ab", "ab_percent": 10}, "switchyard_lb_sticky_cookie is empty"),
        ({"ab_promote": True}, "switchyard_ab_promote=true promotes a running A/B experiment, and shop has none"),
    ],
)
def test_a_strategy_asked_wrongly_is_refused_naming_the_variable(kwargs, said) -> None:
    got = plan.plan_release(v1_live().ledger, "free", "v2", STEPS, "new-id", **kwargs)
    assert got["refused"] and said in got["refused"], got["refused"]


def test_promoting_a_paused_canary_as_an_experiment_is_refused() -> None:
    got = plan.plan_release(v2_paused_after_10().ledger, "free", "v2", STEPS, "new-id", ab_promote=True)
    assert "has none" in got["refused"]


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"strategy": "bluegreen"}, "this run asks for switchyard_strategy=bluegreen"),
        ({"strategy": "ab", "ab_percent": 50, "ab_key": "cookie SV"}, "this run asks for switchyard_ab_percent=50"),
        ({"ab_key": ""}, "this run has no sticky cookie (switchyard_lb_sticky_cookie)"),
        ({"ab_key": "cookie OTHER"}, "Run with switchyard_lb_sticky_cookie=SV"),
    ],
)
def test_a_running_experiment_refuses_what_would_change_it(kwargs, said) -> None:
    got = plan.plan_release(ab_running(20).ledger, "free", "v2", STEPS, "new-id", **kwargs)
    assert got["refused"] and said in got["refused"], got["refused"]


def test_a_paused_canary_refuses_another_strategy_and_resumes_with_the_default() -> None:
    host = v2_paused_after_10()
    got = plan.plan_release(
        host.ledger, "free", "v2", STEPS, "new-id", strategy="ab", ab_percent=10, ab_key="cookie SV"
    )
    assert "paused with the canary strategy; this run asks for switchyard_strategy=ab" in got["refused"]
    assert plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id")["refused"] is None


def test_promoting_an_experiment_again_once_promoted_is_a_noop() -> None:
    host = ab_running(20)
    host.take_lock("r2", 20)
    host.step("r2", {"name": "promote"}, 21)
    host.ledger = tr.promote(host.ledger, "r2", at(21), color="green", weights=canary_weights(100, "blue", "green"))
    host.unlock("r2")
    got = plan.plan_release(host.ledger, "free", "v2", STEPS, "new-id", ab_promote=True, ab_key="cookie SV")
    assert got["refused"] is None and got["noop"] is True
