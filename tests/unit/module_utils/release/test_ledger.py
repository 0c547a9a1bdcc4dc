"""The release ledger's transitions and the release lock's decisions, as pure functions of a ledger,
a lock and a fixed time; and the JSON files, in a temporary directory."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.release import actions, store
from ansible_collections.switchyard.release.plugins.module_utils.release import ledger as document
from ansible_collections.switchyard.release.plugins.module_utils.release import params as release_params
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import (
    LockError,
    drop_lock,
    lock_state,
    new_lock,
    take_lock,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.store import read_lock, write_lock

T0 = datetime(2026, 11, 26, 17, 0, 0, tzinfo=timezone.utc)  # noqa: UP017 (the module_utils target 3.8)
IMAGES_V1 = {"api": "127.0.0.1:5000/shop/api@sha256:" + "1" * 64}
IMAGES_V2 = {"api": "127.0.0.1:5000/shop/api@sha256:" + "2" * 64}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(minutes: float) -> str:
    return at(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")


def params(action: str, release_id: str | None = "r1", **extra) -> dict:
    base = {
        "app": "shop",
        "action": action,
        "release_id": release_id,
        "owner": "ops@ctl",
        "lock_ttl": 3600,
        "kind": "release",
        "version": None,
        "color": None,
        "from_color": None,
        "images": None,
        "step": None,
        "weights": None,
        "reason": None,
        "force": False,
        "unlock": True,
        "history_limit": 50,
        # One run per release in these tests, unless a test says otherwise.
        "lock_token": f"token-of-{release_id}",
    }
    base.update(extra)
    return release_params.validate_params(base)


def act(ledger: dict, lock: dict | None, action: str, minutes: float = 0, **kw) -> dict:
    return actions.apply_action(ledger, lock, params(action, **kw), at(minutes), "dockerhost", 4242)


def first_release(version: str = "v1", images: dict | None = None, rid: str = "r1", start: float = 0) -> tuple:
    """lock, begin, deployed, promote on an empty ledger: (ledger, lock)."""
    ledger, lock = document.empty_ledger("shop"), None
    images = images or IMAGES_V1
    out = act(ledger, lock, "lock", start, release_id=rid)
    out = act(out["ledger"], out["lock"], "begin", start + 1, release_id=rid, version=version, images=images)
    out = act(out["ledger"], out["lock"], "step", start + 2, release_id=rid, step={"name": "deploy", "deployed": True})
    out = act(out["ledger"], out["lock"], "promote", start + 3, release_id=rid, weights={"blue": 256})
    return out["ledger"], out["lock"]


def second_release(ledger: dict, rid: str = "r2", start: float = 10) -> dict:
    """lock, begin, deploy and a canary step of v2 on top of a live v1: the apply_action result."""
    out = act(ledger, None, "lock", start, release_id=rid)
    out = act(out["ledger"], out["lock"], "begin", start + 1, release_id=rid, version="v2", images=IMAGES_V2)
    out = act(out["ledger"], out["lock"], "step", start + 2, release_id=rid, step={"name": "deploy", "deployed": True})
    step = {
        "name": "canary-10",
        "weights": {"blue": 230, "green": 26},
        "verdict": {"verdict": "promote", "reason": "ok"},
    }
    return act(out["ledger"], out["lock"], "step", start + 3, release_id=rid, step=step)


def test_first_release_blue_becomes_live() -> None:
    ledger, lock = first_release()
    assert lock is None, "promote releases the lock of its release"
    assert ledger["live"] == "blue" and ledger["previous"] is None
    blue = ledger["colors"]["blue"]
    assert blue == {
        "version": "v1",
        "images": IMAGES_V1,
        "release_id": "r1",
        "state": "live",
        "deployed_at": stamp(2),
        "promoted_at": stamp(3),
        "demoted_at": None,
        "retired_at": None,
    }
    (release,) = ledger["releases"]
    assert release["kind"] == "release" and release["owner"] == "ops@ctl"
    assert release["color"] == "blue" and release["from_color"] is None
    assert release["outcome"] == "promoted" and release["finished_at"] == stamp(3)
    assert release["started_at"] == stamp(1)
    assert [s["name"] for s in release["steps"]] == ["deploy"]
    assert ledger["weights"] == {"blue": 256}
    assert ledger["updated_at"] == stamp(3)


def test_lock_free_held_expired() -> None:
    lock = new_lock("ops@ctl", "r1", 60, at(0), "h", 1)
    assert lock["acquired_at"] == stamp(0) and lock["expires_at"] == stamp(1)
    assert lock_state(None, at(0)) == "free"
    assert lock_state(lock, at(0.99)) == "held"
    assert lock_state(lock, at(1)) == "expired"
    # A sub-second acquisition rounds the expiry up: a ttl is never shortened.
    precise = new_lock("ops@ctl", "r1", 1, T0 + timedelta(microseconds=900_000), "h", 1)
    assert precise["expires_at"] == "2026-11-26T17:00:02Z"


def test_lock_is_idempotent_and_refuses_another_release() -> None:
    ledger = document.empty_ledger("shop")
    out = act(ledger, None, "lock")
    assert out["changed"] and out["lock_state"] == "held" and out["lock"]["release_id"] == "r1"
    assert out["lock"]["host"] == "dockerhost" and out["lock"]["pid"] == 4242 and out["ledger"] is ledger
    assert out["lock_token"] == "token-of-r1" == out["lock"]["token"]
    again = act(ledger, out["lock"], "lock", 5)
    assert not again["changed"], "the same run: only renewed"
    assert again["lock"] == {**out["lock"], "expires_at": stamp(65)}
    with pytest.raises(LockError) as refused:
        act(ledger, out["lock"], "lock", 5, release_id="r2", owner="dev@laptop")
    assert refused.value.msg.startswith(
        f"release lock of shop is held by ops@ctl (release r1) since {stamp(0)}, expires {stamp(60)}"
    )
    assert refused.value.details["lock"] == out["lock"]
    # Renewed by its own run once expired.
    renewed = act(ledger, out["lock"], "lock", 61)
    assert renewed["lock"]["expires_at"] == stamp(121) and renewed["takeover"] is None
    assert renewed["lock"]["acquired_at"] == stamp(0)


def test_two_runs_of_the_same_release_are_two_holders() -> None:
    """Two operators resuming the same paused release: the second run is refused while the first holds it."""
    ledger = document.empty_ledger("shop")
    first = act(ledger, None, "lock", release_id="r1", lock_token="run-one-token")
    with pytest.raises(LockError, match=r"held by ops@ctl \(release r1\).*another run of the same release"):
        act(ledger, first["lock"], "lock", 1, release_id="r1", lock_token="run-two-token")
    with pytest.raises(LockError, match="this run has lost it"):
        act(ledger, first["lock"], "step", 1, release_id="r1", lock_token="run-two-token", step={"name": "x"})


def test_every_step_renews_the_lock_and_a_lost_lock_refuses_the_next_step() -> None:
    ledger = first_release()[0]
    out = act(ledger, None, "lock", 10, release_id="r2", lock_ttl=600)
    out = act(out["ledger"], out["lock"], "begin", 11, release_id="r2", lock_ttl=600, version="v2")
    assert out["lock"]["expires_at"] == stamp(21)
    # A release longer than the ttl: each step pushes the expiry, so nobody can take it over.
    for minute in (19, 27, 35):
        out = act(
            out["ledger"], out["lock"], "step", minute, release_id="r2", lock_ttl=600, step={"name": f"s{minute}"}
        )
        assert out["lock"]["expires_at"] == stamp(minute + 10) and out["lock_state"] == "held"
        with pytest.raises(LockError):
            act(out["ledger"], out["lock"], "lock", minute + 1, release_id="r3", owner="dev@laptop")
    renewed = act(out["ledger"], out["lock"], "renew", 40, release_id=None, lock_token="token-of-r2", lock_ttl=600)
    assert renewed["lock"]["expires_at"] == stamp(50) and not renewed["changed"]
    # A renewer that does not say (release_state's default ttl) keeps the ttl the lock was taken with.
    kept = act(out["ledger"], out["lock"], "renew", 40, release_id=None, lock_token="token-of-r2", lock_ttl=3600)
    assert kept["lock"]["expires_at"] == stamp(50) and kept["lock"]["ttl"] == 600
    # Taken over by force: the next step of r2 is refused, naming the holder.
    taken = act(out["ledger"], out["lock"], "lock", 41, release_id="r3", owner="dev@laptop", force=True)
    with pytest.raises(LockError, match=r"held by dev@laptop \(release r3\).*this run has lost it"):
        act(taken["ledger"], taken["lock"], "renew", 42, release_id="r2")


def test_actions_of_the_holder_need_its_token() -> None:
    with pytest.raises(document.LedgerError, match="lock_token is required with action=step"):
        params("step", lock_token=None, step={"name": "x"})
    with pytest.raises(document.LedgerError, match="lock_token is required with action=renew"):
        params("renew", lock_token=None)
    with pytest.raises(document.LedgerError, match="lock_token: 'a;b' does not match"):
        params("step", lock_token="a;b", step={"name": "x"})
    params("begin", lock_token=None, take_lock=True)  # taking the lock makes a token


def test_unlock() -> None:
    ledger = document.empty_ledger("shop")
    lock = new_lock("ops@ctl", "r1", 60, at(0), "h", 1, "token-of-r1")
    assert act(ledger, lock, "unlock")["lock"] is None
    assert act(ledger, lock, "unlock")["changed"]
    assert not act(ledger, None, "unlock")["changed"]
    with pytest.raises(LockError, match="not by this run .lock_token.; unlock it with force=true"):
        act(ledger, lock, "unlock", release_id="r2")
    assert act(ledger, lock, "unlock", release_id="r2", force=True)["lock"] is None
    assert drop_lock(None, "shop", "r1") is None
    # A lock file written without a token (an older version) is nobody's: force or expiry only.
    with pytest.raises(LockError):
        act(ledger, new_lock("ops@ctl", "r1", 60, at(0), "h", 1), "unlock")


def test_takeover_of_an_expired_lock_abandons_the_running_release() -> None:
    ledger = first_release()[0]
    out = act(ledger, None, "lock", 10, release_id="r2", lock_ttl=3600)
    out = act(out["ledger"], out["lock"], "begin", 11, release_id="r2", version="v2")
    with pytest.raises(LockError):
        act(out["ledger"], out["lock"], "lock", 69, release_id="r3", owner="dev@laptop")
    taken = act(out["ledger"], out["lock"], "lock", 71, release_id="r3", owner="dev@laptop")
    assert taken["changed"] and taken["lock"]["release_id"] == "r3" and taken["lock"]["owner"] == "dev@laptop"
    expected = {
        "at": stamp(71),
        "by": "dev@laptop",
        "release_id": "r3",
        "previous_owner": "ops@ctl",
        "previous_release_id": "r2",
        "since": stamp(10),
        "expired_at": stamp(71),  # renewed by begin at minute 11
        "forced": False,
    }
    assert taken["takeover"] == expected
    assert taken["ledger"]["takeovers"] == [expected]
    lost = document.find_release(taken["ledger"], "r2")
    assert lost["outcome"] == "abandoned" and lost["finished_at"] == stamp(71)
    assert lost["reason"] == "lock expired, taken over by dev@laptop (release r3)"
    # The abandoned release can no longer change the ledger.
    with pytest.raises(document.LedgerError, match="ended abandoned .lock expired, taken over by dev@laptop"):
        act(taken["ledger"], taken["lock"], "promote", 72, release_id="r2")
    with pytest.raises(LockError, match=r"needs the release lock of shop held by this run \(release r2\)"):
        act(taken["ledger"], taken["lock"], "step", 72, release_id="r2", step={"name": "x"})
    # Its rescue marking it failed changes nothing: it already ended.
    assert not act(taken["ledger"], taken["lock"], "fail", 72, release_id="r2", reason="late")["changed"]


def test_forced_takeover_of_a_held_lock() -> None:
    lock, takeover = take_lock(
        new_lock("ops@ctl", "r1", 3600, at(0), "h", 1, "t1"),
        "shop",
        "r2",
        "dev@laptop",
        60,
        at(1),
        "h",
        2,
        "t2",
        force=True,
    )
    assert lock["release_id"] == "r2" and takeover["forced"] is True
    ledger = first_release()[0]
    running = act(ledger, None, "lock", 10, release_id="r2")
    running = act(running["ledger"], running["lock"], "begin", 11, release_id="r2")
    with pytest.raises(LockError):
        act(running["ledger"], running["lock"], "lock", 12, release_id="r3")
    forced = act(running["ledger"], running["lock"], "lock", 12, release_id="r3", force=True)
    assert forced["takeover"]["forced"] is True and forced["ledger"]["takeovers"] == [forced["takeover"]]
    lost = document.find_release(forced["ledger"], "r2")
    assert lost["reason"] == "lock taken over with force by ops@ctl (release r3) before it expired"


def test_ending_actions_refused_under_another_release_lock() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    # r2's lock was removed by force and r3 took it, but has not begun yet: r2 is still running.
    other = act(out["ledger"], None, "lock", 20, release_id="r3")["lock"]
    with pytest.raises(LockError, match=r"held by ops@ctl \(release r3\).*this run \(release r2\) does not hold it"):
        act(out["ledger"], other, "promote", 21, release_id="r2")
    forced = act(out["ledger"], other, "promote", 21, release_id="r2", force=True)
    assert forced["ledger"]["live"] == "green" and forced["lock"] == other, "another release's lock is kept"


def test_begin_needs_the_lock_and_defaults_to_the_idle_color() -> None:
    ledger = first_release()[0]
    with pytest.raises(LockError, match="nobody holds it: take it first with action=lock"):
        act(ledger, None, "begin", release_id="r2")
    lock = new_lock("ops@ctl", "r2", 60, at(10), "h", 1, "token-of-r2")
    out = act(ledger, lock, "begin", 11, release_id="r2", version="v2", images=IMAGES_V2)
    release = out["release"]
    assert out["changed"] and release["color"] == "green" and release["from_color"] == "blue"
    assert release["outcome"] == "running" and release["images"] == IMAGES_V2 and release["version"] == "v2"
    again = act(out["ledger"], lock, "begin", 12, release_id="r2", version="v2")
    assert not again["changed"] and again["ledger"] is out["ledger"]
    with pytest.raises(document.LedgerError, match="would deploy blue, which is live"):
        act(ledger, lock, "begin", 11, release_id="r2", color="blue")


def test_second_release_promote() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    mid = out["ledger"]
    assert mid["colors"]["green"]["state"] == "candidate" and mid["colors"]["blue"]["state"] == "live"
    assert mid["weights"] == {"blue": 230, "green": 26}
    assert out["release"]["verdicts"] == [{"step": "canary-10", "verdict": "promote", "reason": "ok"}]
    done = act(mid, out["lock"], "promote", 20, release_id="r2", weights={"blue": 0, "green": 256})
    after = done["ledger"]
    assert done["changed"] and done["lock"] is None and done["lock_state"] == "free"
    assert after["live"] == "green" and after["previous"] == "blue"
    assert after["colors"]["green"]["state"] == "live" and after["colors"]["green"]["promoted_at"] == stamp(20)
    assert after["colors"]["green"]["deployed_at"] == stamp(12)
    assert after["colors"]["blue"]["state"] == "standby" and after["colors"]["blue"]["demoted_at"] == stamp(20)
    assert after["colors"]["blue"]["version"] == "v1"
    assert after["weights"] == {"blue": 0, "green": 256}
    assert done["release"]["outcome"] == "promoted"
    # Idempotent: promoting again changes nothing (and needs no lock).
    again = act(after, None, "promote", 21, release_id="r2", weights={"blue": 0, "green": 256})
    assert not again["changed"] and again["ledger"] is after


def test_promote_with_unlock_false_keeps_the_lock() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    done = act(out["ledger"], out["lock"], "promote", 20, release_id="r2", unlock=False)
    assert done["lock"] == out["lock"] and done["ledger"]["live"] == "green"


def test_promote_creates_a_color_never_recorded_as_deployed() -> None:
    ledger = document.empty_ledger("shop")
    lock = new_lock("ops@ctl", "r1", 60, at(0), "h", 1, "token-of-r1")
    out = act(ledger, lock, "begin", 1, version="v1", images=IMAGES_V1)
    done = act(out["ledger"], lock, "promote", 2)
    blue = done["ledger"]["colors"]["blue"]
    assert blue["state"] == "live" and blue["deployed_at"] == stamp(2) and blue["version"] == "v1"
    with pytest.raises(document.LedgerError, match="deploys blue, not green"):
        act(out["ledger"], lock, "promote", 2, color="green")


def test_rollback_before_promote_keeps_live_and_fails_the_candidate() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    rolled = act(
        out["ledger"], out["lock"], "rollback", 20, release_id="r2", color="blue", reason="gate: 5xx",
        weights={"blue": 256, "green": 0},
    )  # fmt: skip
    after = rolled["ledger"]
    assert rolled["changed"] and rolled["lock"] is None
    assert after["live"] == "blue" and after["previous"] is None
    assert after["colors"]["green"]["state"] == "failed" and after["colors"]["blue"]["state"] == "live"
    assert rolled["release"]["outcome"] == "rolled_back" and rolled["release"]["reason"] == "gate: 5xx"
    assert after["weights"] == {"blue": 256, "green": 0}
    again = act(after, None, "rollback", 21, release_id="r2", color="blue", reason="gate: 5xx")
    assert not again["changed"]


def test_rollback_swap_after_promote() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    promoted = act(out["ledger"], out["lock"], "promote", 20, release_id="r2")["ledger"]
    lock = act(promoted, None, "lock", 30, release_id="rb1")["lock"]
    begun = act(promoted, lock, "begin", 31, release_id="rb1", kind="rollback")
    assert begun["release"]["color"] == "blue" and begun["release"]["from_color"] == "green"
    rolled = act(begun["ledger"], lock, "rollback", 32, release_id="rb1", color="blue", reason="operator")
    after = rolled["ledger"]
    assert after["live"] == "blue" and after["previous"] == "green"
    assert after["colors"]["blue"]["state"] == "live" and after["colors"]["blue"]["promoted_at"] == stamp(32)
    assert after["colors"]["green"]["state"] == "standby" and after["colors"]["green"]["demoted_at"] == stamp(32)
    assert rolled["release"]["outcome"] == "done" and rolled["lock"] is None
    assert document.find_release(after, "r2")["outcome"] == "promoted", "the rolled-back release's history is kept"
    assert not act(after, None, "rollback", 33, release_id="rb1", color="blue")["changed"]
    # Back again is a swap too (roll forward).
    lock = act(after, None, "lock", 40, release_id="rb2")["lock"]
    begun = act(after, lock, "begin", 41, release_id="rb2", kind="rollback")
    forward = act(begun["ledger"], lock, "rollback", 42, release_id="rb2", color="green")["ledger"]
    assert forward["live"] == "green" and forward["previous"] == "blue"


def test_rollback_to_a_color_that_is_neither_live_nor_previous() -> None:
    ledger = first_release()[0]
    lock = new_lock("ops@ctl", "rb", 60, at(10), "h", 1, "token-of-rb")
    begun = act(ledger, lock, "begin", 11, release_id="rb", kind="rollback")
    with pytest.raises(document.LedgerError, match=r"neither live \(blue\) nor previous \(None\)"):
        act(begun["ledger"], lock, "rollback", 12, release_id="rb", color="green")


def test_fail() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    failed = act(out["ledger"], out["lock"], "fail", 20, release_id="r2", reason="deploy: unhealthy")
    after = failed["ledger"]
    assert failed["changed"] and failed["lock"] is None
    assert after["live"] == "blue" and after["colors"]["green"]["state"] == "failed"
    assert failed["release"]["outcome"] == "failed" and failed["release"]["reason"] == "deploy: unhealthy"
    assert failed["release"]["finished_at"] == stamp(20)
    assert not act(after, None, "fail", 21, release_id="r2", reason="deploy: unhealthy")["changed"]
    with pytest.raises(document.LedgerError, match="cannot be promoted"):
        act(after, None, "promote", 22, release_id="r2")
    promoted = first_release()[0]
    with pytest.raises(document.LedgerError, match="use action=rollback"):
        act(promoted, None, "fail", 22, release_id="r1")


def test_fail_before_deploy_leaves_the_previous_color_alone() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    promoted = act(out["ledger"], out["lock"], "promote", 20, release_id="r2")["ledger"]
    lock = new_lock("ops@ctl", "r3", 60, at(30), "h", 1, "token-of-r3")
    begun = act(promoted, lock, "begin", 31, release_id="r3", version="v3")
    assert begun["release"]["color"] == "blue"
    failed = act(begun["ledger"], lock, "fail", 32, release_id="r3", reason="preflight")["ledger"]
    assert failed["colors"]["blue"]["state"] == "standby" and failed["previous"] == "blue"


def test_deploying_onto_previous_clears_it() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    promoted = act(out["ledger"], out["lock"], "promote", 20, release_id="r2")["ledger"]
    lock = new_lock("ops@ctl", "r3", 60, at(30), "h", 1, "token-of-r3")
    begun = act(promoted, lock, "begin", 31, release_id="r3", version="v3")
    deployed = act(begun["ledger"], lock, "step", 32, release_id="r3", step={"name": "deploy", "deployed": True})
    assert deployed["ledger"]["previous"] is None and deployed["ledger"]["colors"]["blue"]["version"] == "v3"


def test_retire() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    promoted = act(out["ledger"], out["lock"], "promote", 20, release_id="r2")["ledger"]
    lock = new_lock("ops@ctl", "c1", 60, at(30), "h", 1, "token-of-c1")
    begun = act(promoted, lock, "begin", 31, release_id="c1", kind="contract")
    step = {"name": "contract", "migrations_contracted": ["0002"], "migrations_applied": ["0001", "0002"]}
    stepped = act(begun["ledger"], lock, "step", 32, release_id="c1", step=step)
    retired = act(stepped["ledger"], lock, "retire", 33, release_id="c1", color="blue")
    after = retired["ledger"]
    assert retired["changed"] and retired["lock"] is None
    assert after["previous"] is None and after["live"] == "green"
    assert after["colors"]["blue"]["state"] == "retired" and after["colors"]["blue"]["retired_at"] == stamp(33)
    assert after["migrations"] == {"applied": ["0001", "0002"], "contracted": ["0002"], "last_contract_at": stamp(32)}
    assert retired["release"]["outcome"] == "done"
    assert not act(after, None, "retire", 34, release_id="c1", color="blue")["changed"]
    # No rollback to a retired color.
    lock = new_lock("ops@ctl", "rb", 60, at(40), "h", 1, "token-of-rb")
    begun = act(after, lock, "begin", 41, release_id="rb", kind="rollback")
    with pytest.raises(document.LedgerError, match=f"blue was retired at {stamp(33)} by a contract"):
        act(begun["ledger"], lock, "rollback", 42, release_id="rb", color="blue")
    with pytest.raises(document.LedgerError, match="cannot retire green: it is the live color"):
        act(after, None, "retire", 42, release_id="c1", color="green")


def test_retire_defaults_to_the_release_color() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    promoted = act(out["ledger"], out["lock"], "promote", 20, release_id="r2")["ledger"]
    lock = new_lock("ops@ctl", "c1", 3600, at(30), "h", 1, "token-of-c1")
    begun = act(promoted, lock, "begin", 31, release_id="c1", kind="contract", color="blue")
    retired = act(begun["ledger"], lock, "retire", 32, release_id="c1")
    assert retired["ledger"]["colors"]["blue"]["state"] == "retired" and retired["ledger"]["previous"] is None
    # A contract with no old color left only ends.
    lock = new_lock("ops@ctl", "c2", 3600, at(40), "h", 1, "token-of-c2")
    begun = act(retired["ledger"], lock, "begin", 41, release_id="c2", kind="contract")
    ended = act(begun["ledger"], lock, "retire", 42, release_id="c2")
    assert ended["release"]["outcome"] == "done" and ended["lock"] is None
    assert ended["ledger"]["colors"] == retired["ledger"]["colors"]


def test_deployed_step_records_the_images_it_deployed() -> None:
    ledger = first_release()[0]
    lock = new_lock("ops@ctl", "r2", 3600, at(10), "h", 1, "token-of-r2")
    begun = act(ledger, lock, "begin", 11, release_id="r2", version="v2", images={"api": "shop/api:v2"})
    step = {"name": "deploy", "deployed": True, "images": IMAGES_V2}
    deployed = act(begun["ledger"], lock, "step", 12, release_id="r2", step=step)
    assert deployed["ledger"]["colors"]["green"]["images"] == IMAGES_V2
    assert deployed["release"]["images"] == {"api": "shop/api:v2"}, "the release keeps what it was asked"
    with pytest.raises(document.LedgerError, match="step.images"):
        params("step", step={"name": "deploy", "deployed": True, "images": ["x"]})


def test_step_idempotency_and_replacement() -> None:
    ledger = first_release()[0]
    out = second_release(ledger)
    step = {
        "name": "canary-10",
        "weights": {"blue": 230, "green": 26},
        "verdict": {"verdict": "promote", "reason": "ok"},
    }
    same = act(out["ledger"], out["lock"], "step", 30, release_id="r2", step=step)
    assert not same["changed"] and same["ledger"] is out["ledger"]
    # Strings from templates are the same weights.
    as_text = dict(step, weights={"blue": "230", "green": "26"})
    assert not act(out["ledger"], out["lock"], "step", 30, release_id="r2", step=as_text)["changed"]
    changed = dict(step, verdict={"verdict": "hold", "reason": "too few requests"}, requests=120)
    replaced = act(out["ledger"], out["lock"], "step", 31, release_id="r2", step=changed)
    steps = replaced["release"]["steps"]
    assert replaced["changed"] and [s["name"] for s in steps] == ["deploy", "canary-10"]
    # Replaced in place: when the step happened is kept, when it was last recorded is added.
    assert steps[1]["at"] == stamp(13) and steps[1]["updated_at"] == stamp(31) and steps[1]["requests"] == 120
    assert replaced["release"]["verdicts"] == [{"step": "canary-10", "verdict": "hold", "reason": "too few requests"}]


def test_step_refusals() -> None:
    ledger = first_release()[0]
    lock = new_lock("ops@ctl", "r9", 60, at(10), "h", 1, "token-of-r9")
    with pytest.raises(document.LedgerError, match="release r9 is not in the ledger of shop"):
        act(ledger, lock, "step", 11, release_id="r9", step={"name": "x"})
    with pytest.raises(document.LedgerError, match="step: name is required"):
        params("step", step={"weights": {"blue": 1}})
    with pytest.raises(document.LedgerError, match="outside 0..256"):
        params("step", step={"name": "x", "weights": {"blue": 300}})
    with pytest.raises(document.LedgerError, match="'red' is not a color"):
        params("promote", weights={"red": 1})
    with pytest.raises(document.LedgerError, match="step.verdict"):
        params("step", step={"name": "x", "verdict": {"verdict": "maybe"}})


def test_parameter_validation_names_the_parameter() -> None:
    with pytest.raises(document.LedgerError, match=r"^app: 'Shop' does not match"):
        params("get", app="Shop")
    with pytest.raises(document.LedgerError, match=r"^release_id: 'r 1' does not match"):
        params("lock", release_id="r 1")
    with pytest.raises(document.LedgerError, match="release_id is required with action=lock"):
        params("lock", release_id=None)
    with pytest.raises(document.LedgerError, match="lock_ttl"):
        params("lock", lock_ttl=0)
    assert params("get", release_id=None)["action"] == "get"


def test_history_limit_drops_the_oldest() -> None:
    ledger = document.empty_ledger("shop")
    for n in range(5):
        lock = new_lock("ops@ctl", f"r{n}", 60, at(n), "h", 1, f"token-of-r{n}")
        ledger = act(ledger, lock, "begin", n, release_id=f"r{n}", history_limit=3)["ledger"]
    assert [r["id"] for r in ledger["releases"]] == ["r2", "r3", "r4"]
    # Each begin abandoned the one before it, still running without the lock.
    assert [r["outcome"] for r in ledger["releases"]] == ["abandoned", "abandoned", "running"]


def test_get_changes_nothing() -> None:
    ledger = first_release()[0]
    out = act(ledger, None, "get", release_id=None)
    assert not out["changed"] and out["ledger"] is ledger and out["lock_state"] == "free" and out["release"] is None


def test_files_load_save_and_corrupt(tmp_path) -> None:
    path = tmp_path / "ledger.json"
    assert store.load_ledger(str(path), "shop") == document.empty_ledger("shop")
    ledger = first_release()[0]
    store.save_ledger(str(path), ledger)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert store.load_ledger(str(path), "shop") == ledger
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"], "no temporary file left behind"
    with pytest.raises(document.LedgerError, match="belongs to app 'shop', not 'cart'"):
        store.load_ledger(str(path), "cart")
    path.write_text('{"schema": 1, "app": "shop", "live": ')
    with pytest.raises(document.LedgerError, match=f"the ledger {path} is not valid JSON") as corrupt:
        store.load_ledger(str(path), "shop")
    assert "left as it is" in corrupt.value.msg
    assert path.read_text() == '{"schema": 1, "app": "shop", "live": ', "a corrupt ledger is never overwritten"
    path.write_text(json.dumps({"schema": 2, "app": "shop"}))
    with pytest.raises(document.LedgerError, match="schema 2"):
        store.load_ledger(str(path), "shop")
    path.write_text(json.dumps({"schema": 1, "app": "shop", "live": "red"}))
    with pytest.raises(document.LedgerError, match="damaged: live is 'red'"):
        store.load_ledger(str(path), "shop")


def test_lock_file(tmp_path) -> None:
    path = tmp_path / "release.lock"
    assert read_lock(str(path)) is None
    lock = new_lock("ops@ctl", "r1", 60, at(0), "h", 1, "token-of-r1")
    write_lock(str(path), lock)
    assert read_lock(str(path)) == lock and oct(path.stat().st_mode & 0o777) == "0o600"
    write_lock(str(path), None)
    assert not path.exists()
    write_lock(str(path), None)
    path.write_text("{not json")
    with pytest.raises(LockError, match=f"the release lock file {path} is not valid JSON"):
        read_lock(str(path))


def test_run_action_check_mode_creates_nothing(tmp_path) -> None:
    directory = tmp_path / "state" / "shop"
    base = params("lock") | {"path": str(directory)}
    result = store.run_action(base, check_mode=True, clock=lambda: at(0), host="h", pid=1)
    assert result["changed"] and result["lock"]["release_id"] == "r1" and not directory.exists()
    result = store.run_action(base, check_mode=False, clock=lambda: at(0), host="h", pid=1)
    assert result["changed"] and oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in directory.iterdir()) == [".release_state.mutex", "release.lock"]
    # A no-op on a missing directory creates nothing either.
    other = tmp_path / "other"
    assert not store.run_action(params("unlock") | {"path": str(other)}, clock=lambda: at(0))["changed"]
    assert not other.exists()


def test_begin_with_take_lock_takes_the_lock_and_opens_the_entry_in_one_write() -> None:
    ledger = document.empty_ledger("shop")
    result = act(ledger, None, "begin", 0, take_lock=True, version="v1")
    assert result["lock"]["release_id"] == "r1" and result["release"]["outcome"] == "running"
    again = act(result["ledger"], result["lock"], "begin", 1, take_lock=True, version="v1")
    assert again["changed"] is False, "the same release begun again changes nothing"


def test_begin_with_take_lock_is_refused_while_another_release_holds_it() -> None:
    held = act(document.empty_ledger("shop"), None, "lock", 0, release_id="r9")["lock"]
    with pytest.raises(LockError, match=r"held by ops@ctl \(release r9\)"):
        act(document.empty_ledger("shop"), held, "begin", 1, take_lock=True, version="v1")
