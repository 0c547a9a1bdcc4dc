"""switchyard.release.release_state run for real (a Python process per task, as Ansible runs it on a
target) on a state directory under tmp_path: the four ways of each action, the lock between
releases, expiry and take-over, concurrent runs, file modes and check mode."""

from __future__ import annotations

import getpass
import json
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.modules import four_way, run_module

IMAGES_V1 = {"api": "127.0.0.1:5000/shop/api@sha256:" + "1" * 64}
IMAGES_V2 = {"api": "127.0.0.1:5000/shop/api@sha256:" + "2" * 64}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """The state directory (not created: the module creates it)."""
    return tmp_path / "lib" / "switchyard" / "shop"


def rs(state: Path, action: str, **args) -> dict:
    """release_state's arguments; each release is one run, with its own lock token, unless a test says otherwise."""
    if args.get("release_id") and "lock_token" not in args:
        args["lock_token"] = f"token-of-{args['release_id']}"
    return {"app": "shop", "path": str(state), "action": action, **args}


def ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def assert_four_way(results: list[dict]) -> list[dict]:
    check, apply, check_again, apply_again = (ok(r) for r in results)
    assert check["changed"] is True and apply["changed"] is True
    assert check_again["changed"] is False and apply_again["changed"] is False
    # Check mode says what applying does (times aside: they are taken per run).
    assert strip_times(check["ledger"]) == strip_times(apply["ledger"])
    assert (check["lock"] is None) == (apply["lock"] is None)
    assert apply_again["ledger"] == apply["ledger"] and check_again["ledger"] == apply["ledger"]
    return results


def strip_times(value):
    if isinstance(value, dict):
        return {k: strip_times(v) for k, v in value.items() if not k.endswith("_at") and k not in ("at", "since")}
    if isinstance(value, list):
        return [strip_times(v) for v in value]
    return value


def on_disk(state: Path) -> tuple[dict | None, dict | None]:
    ledger, lock = state / "ledger.json", state / "release.lock"
    return (
        json.loads(ledger.read_text()) if ledger.exists() else None,
        json.loads(lock.read_text()) if lock.exists() else None,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def release(state: Path, rid: str, version: str, images: dict) -> dict:
    """A whole release, applied: lock, begin, deploy step, promote. Returns the promote result."""
    ok(run_module("release_state", rs(state, "lock", release_id=rid)))
    ok(run_module("release_state", rs(state, "begin", release_id=rid, version=version, images=images)))
    ok(run_module("release_state", rs(state, "step", release_id=rid, step={"name": "deploy", "deployed": True})))
    return ok(run_module("release_state", rs(state, "promote", release_id=rid)))


def test_lock_four_ways_files_and_modes(state: Path) -> None:
    check, apply = assert_four_way(four_way("release_state", rs(state, "lock", release_id="r1")))[:2]
    assert check["lock"]["release_id"] == "r1" and check["lock_state"] == "held"
    lock = apply["lock"]
    assert lock["owner"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert lock["host"] == socket.gethostname() and isinstance(lock["pid"], int)
    # The token is the holder's alone: returned as lock_token, never inside lock (results, diffs, errors).
    assert set(lock) == {"owner", "release_id", "ttl", "acquired_at", "expires_at", "host", "pid"}
    assert apply["lock_token"] == "token-of-r1" and "token" not in check["diff"]["after"]["lock"]
    ledger, written = on_disk(state)
    assert ledger is None, "taking the lock writes the lock only"
    assert written["token"] == "token-of-r1"
    # The third and fourth runs (the same token) renewed it: only the expiry moved, never earlier.
    assert {**written, "expires_at": lock["expires_at"], "token": None} == {**lock, "token": None}
    assert written["expires_at"] >= lock["expires_at"]
    assert mode(state) == 0o700 and mode(state / "release.lock") == 0o600
    assert mode(state / ".release_state.mutex") == 0o600
    # diff: the ledger and the lock, before and after.
    assert check["diff"]["before"]["lock"] is None and check["diff"]["after"]["lock"]["release_id"] == "r1"
    assert set(check["diff"]["before"]) == {"ledger", "lock"}


def test_check_mode_writes_nothing_not_even_the_directory(state: Path) -> None:
    for args in (
        rs(state, "lock", release_id="r1"),
        rs(state, "get"),
        rs(state, "unlock", release_id="r1"),
    ):
        result = ok(run_module("release_state", args, check=True))
        assert result["ledger"]["live"] is None
    assert not state.exists() and not state.parent.exists()
    # A run that changes nothing creates nothing either.
    assert ok(run_module("release_state", rs(state, "unlock", release_id="r1")))["changed"] is False
    assert ok(run_module("release_state", rs(state, "get")))["lock_state"] == "free"
    assert not state.exists()


def test_a_state_directory_open_to_others_is_tightened_by_the_first_write(state: Path) -> None:
    state.mkdir(parents=True)
    state.chmod(0o755)  # as the data role created it before, or an operator by hand
    ok(run_module("release_state", rs(state, "get")))
    assert mode(state) == 0o755, "a read changes nothing"
    tightened = ok(run_module("release_state", rs(state, "unlock", release_id="r1")))  # nothing else to do
    assert tightened["changed"] is True and mode(state) == 0o700
    assert ok(run_module("release_state", rs(state, "unlock", release_id="r1")))["changed"] is False


def test_first_and_second_release_four_ways(state: Path) -> None:
    ok(run_module("release_state", rs(state, "lock", release_id="r1")))
    results = assert_four_way(
        four_way("release_state", rs(state, "begin", release_id="r1", version="v1", images=IMAGES_V1))
    )
    assert results[1]["release"]["color"] == "blue" and results[1]["release"]["outcome"] == "running"
    deploy = {"name": "deploy", "deployed": True, "migrations_applied": ["0001"]}
    results = assert_four_way(four_way("release_state", rs(state, "step", release_id="r1", step=deploy)))
    assert results[1]["ledger"]["colors"]["blue"]["state"] == "candidate"
    results = assert_four_way(four_way("release_state", rs(state, "promote", release_id="r1", weights={"blue": 256})))
    check, apply = results[0], results[1]
    assert check["lock"] is None and apply["lock"] is None and apply["lock_state"] == "free"
    assert apply["ledger"]["live"] == "blue" and apply["release"]["outcome"] == "promoted"
    ledger, lock = on_disk(state)
    assert lock is None and ledger == apply["ledger"] and mode(state / "ledger.json") == 0o600
    assert ledger["migrations"]["applied"] == ["0001"] and ledger["weights"] == {"blue": 256}

    # The second release deploys green, passes a canary step and is promoted.
    ok(run_module("release_state", rs(state, "lock", release_id="r2")))
    begun = ok(run_module("release_state", rs(state, "begin", release_id="r2", version="v2", images=IMAGES_V2)))
    assert begun["release"]["color"] == "green" and begun["release"]["from_color"] == "blue"
    ok(run_module("release_state", rs(state, "step", release_id="r2", step={"name": "deploy", "deployed": True})))
    canary = {
        "name": "canary-10",
        "weights": {"blue": 230, "green": 26},
        "verdict": {"verdict": "promote", "reason": "all metrics pass"},
        "requests": 812,
    }
    results = assert_four_way(four_way("release_state", rs(state, "step", release_id="r2", step=canary)))
    assert results[1]["release"]["verdicts"] == [
        {"step": "canary-10", "verdict": "promote", "reason": "all metrics pass"}
    ]
    assert results[1]["ledger"]["weights"] == {"blue": 230, "green": 26}
    assert results[1]["release"]["steps"][-1]["requests"] == 812
    promote = rs(state, "promote", release_id="r2", weights={"blue": 0, "green": 256})
    apply = assert_four_way(four_way("release_state", promote))[1]
    ledger = apply["ledger"]
    assert ledger["live"] == "green" and ledger["previous"] == "blue"
    assert ledger["colors"]["blue"]["state"] == "standby" and ledger["colors"]["green"]["state"] == "live"
    assert [r["id"] for r in ledger["releases"]] == ["r1", "r2"]


def test_rollback_fail_and_retire_four_ways(state: Path) -> None:
    release(state, "r1", "v1", IMAGES_V1)
    release(state, "r2", "v2", IMAGES_V2)

    # rollback.yml: its own release, a swap back to blue.
    ok(run_module("release_state", rs(state, "lock", release_id="rb1")))
    ok(run_module("release_state", rs(state, "begin", release_id="rb1", kind="rollback")))
    args = rs(state, "rollback", release_id="rb1", color="blue", reason="operator", weights={"blue": 256, "green": 0})
    apply = assert_four_way(four_way("release_state", args))[1]
    assert apply["ledger"]["live"] == "blue" and apply["ledger"]["previous"] == "green"
    assert apply["release"]["outcome"] == "done" and apply["lock"] is None

    # A release that fails before it takes traffic: live stays blue.
    ok(run_module("release_state", rs(state, "lock", release_id="r3")))
    begun = ok(run_module("release_state", rs(state, "begin", release_id="r3", version="v3")))
    assert begun["release"]["color"] == "green"
    ok(run_module("release_state", rs(state, "step", release_id="r3", step={"name": "deploy", "deployed": True})))
    apply = assert_four_way(
        four_way("release_state", rs(state, "fail", release_id="r3", reason="green never became healthy"))
    )[1]
    assert apply["ledger"]["live"] == "blue" and apply["ledger"]["colors"]["green"]["state"] == "failed"
    assert apply["release"]["outcome"] == "failed" and apply["release"]["reason"] == "green never became healthy"
    assert on_disk(state)[1] is None

    # A release rolled back by its gate.
    release_v4 = rs(state, "begin", release_id="r4", version="v4")
    ok(run_module("release_state", rs(state, "lock", release_id="r4")))
    ok(run_module("release_state", release_v4))
    ok(run_module("release_state", rs(state, "step", release_id="r4", step={"name": "deploy", "deployed": True})))
    args = rs(state, "rollback", release_id="r4", color="blue", reason="gate: error_rate 4.1 %")
    apply = assert_four_way(four_way("release_state", args))[1]
    assert apply["release"]["outcome"] == "rolled_back" and apply["ledger"]["live"] == "blue"

    # contract.yml retires green... which is not previous any more (deployed over by r4): still retired.
    release(state, "r5", "v5", IMAGES_V2)  # green live, blue previous
    ok(run_module("release_state", rs(state, "lock", release_id="c1")))
    ok(run_module("release_state", rs(state, "begin", release_id="c1", kind="contract")))
    step = {"name": "contract", "migrations_contracted": ["0002"]}
    ok(run_module("release_state", rs(state, "step", release_id="c1", step=step)))
    apply = assert_four_way(four_way("release_state", rs(state, "retire", release_id="c1", color="blue")))[1]
    ledger = apply["ledger"]
    assert ledger["previous"] is None and ledger["colors"]["blue"]["state"] == "retired"
    assert ledger["migrations"]["contracted"] == ["0002"] and ledger["migrations"]["last_contract_at"]
    assert apply["release"]["outcome"] == "done"

    # No rollback to a retired color.
    ok(run_module("release_state", rs(state, "lock", release_id="rb2")))
    ok(run_module("release_state", rs(state, "begin", release_id="rb2", kind="rollback")))
    refused = run_module("release_state", rs(state, "rollback", release_id="rb2", color="blue"))
    assert refused["failed"] and "blue was retired at" in refused["msg"] and refused["changed"] is False


def test_a_second_release_is_refused_by_the_lock(state: Path) -> None:
    first = ok(run_module("release_state", rs(state, "lock", release_id="r1", owner="alice@ctl")))
    before = on_disk(state)
    refused = run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl"))
    assert refused["failed"] and refused["changed"] is False
    since, expires = first["lock"]["acquired_at"], first["lock"]["expires_at"]
    assert refused["msg"].startswith(
        f"release lock of shop is held by alice@ctl (release r1) since {since}, expires {expires}; "
    )
    assert refused["lock"] == first["lock"] and refused["lock_state"] == "held"
    assert on_disk(state) == before
    # Nor can the other release begin, or unlock it.
    refused = run_module("release_state", rs(state, "begin", release_id="r2"))
    assert refused["failed"] and "held by alice@ctl (release r1)" in refused["msg"]
    refused = run_module("release_state", rs(state, "unlock", release_id="r2"))
    assert refused["failed"] and "force=true" in refused["msg"]
    assert on_disk(state) == before
    # unlock by its own release, four ways.
    apply = assert_four_way(four_way("release_state", rs(state, "unlock", release_id="r1")))[1]
    assert apply["lock"] is None and not (state / "release.lock").exists()


def test_expired_lock_is_taken_over_and_recorded(state: Path) -> None:
    ok(run_module("release_state", rs(state, "lock", release_id="r1", owner="alice@ctl", lock_ttl=1)))
    ok(run_module("release_state", rs(state, "begin", release_id="r1", version="v1", lock_ttl=1)))  # renews for 1 s
    time.sleep(2.5)  # a 1 s ttl, rounded up to the second: expired at most 2 s after begin
    assert ok(run_module("release_state", rs(state, "get", release_id="r1")))["lock_state"] == "expired"
    check = ok(run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl"), check=True))
    assert check["changed"] and check["takeover"]["previous_release_id"] == "r1"
    taken = ok(run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl")))
    assert taken["changed"] and taken["lock"]["owner"] == "bob@ctl" and taken["lock_state"] == "held"
    takeover = taken["takeover"]
    assert takeover["by"] == "bob@ctl" and takeover["release_id"] == "r2" and takeover["forced"] is False
    assert takeover["previous_owner"] == "alice@ctl" and takeover["previous_release_id"] == "r1"
    ledger, lock = on_disk(state)
    assert ledger["takeovers"] == [takeover] and {**lock, "token": None} == {**taken["lock"], "token": None}
    lost = ledger["releases"][0]
    assert lost["outcome"] == "abandoned" and lost["reason"] == "lock expired, taken over by bob@ctl (release r2)"
    # The release that lost the lock cannot record steps any more.
    refused = run_module("release_state", rs(state, "step", release_id="r1", step={"name": "deploy"}))
    assert refused["failed"] and "held by bob@ctl (release r2)" in refused["msg"]


def test_concurrent_lock_attempts_exactly_one_wins(state: Path) -> None:
    for attempt in range(3):
        directory = state.parent / f"shop{attempt}"
        ids = [f"r{attempt}-{n}" for n in range(8)]
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            results = list(
                pool.map(lambda rid, d=directory: run_module("release_state", rs(d, "lock", release_id=rid)), ids)
            )
        winners = [r for r in results if not r.get("failed")]
        assert len(winners) == 1, [r.get("msg") for r in results]
        winner = winners[0]["lock"]["release_id"]
        assert on_disk(directory)[1]["release_id"] == winner
        for loser in (r for r in results if r.get("failed")):
            assert f"(release {winner})" in loser["msg"]


def test_get_and_failures_before_anything_is_written(state: Path) -> None:
    release(state, "r1", "v1", IMAGES_V1)
    got = ok(run_module("release_state", rs(state, "get", release_id="r1")))
    assert got["changed"] is False and got["ledger"]["live"] == "blue" and got["release"]["id"] == "r1"
    assert got["lock"] is None and got["lock_state"] == "free" and got["takeover"] is None
    before = (state / "ledger.json").read_text()

    bad_app = run_module("release_state", {"app": "Shop", "path": str(state), "action": "get"})
    assert bad_app["failed"] and bad_app["msg"].startswith("app: 'Shop'")
    bad_id = run_module("release_state", rs(state, "lock", release_id="r 2"))
    assert bad_id["failed"] and bad_id["msg"].startswith("release_id:")
    missing = run_module("release_state", rs(state, "lock"))
    assert missing["failed"] and "release_id" in missing["msg"]
    no_step = run_module("release_state", rs(state, "step", release_id="r1", step={"weights": {"blue": 1}}))
    assert no_step["failed"] and "name is required" in no_step["msg"]
    unknown = run_module("release_state", rs(state, "promote", release_id="nope"))
    assert unknown["failed"] and "release nope is not in the ledger of shop" in unknown["msg"]
    # A version goes into color.env: one that would add a line there is refused at the plan.
    hostile = "v2\nDB_PASSWORD=attacker"
    bad_version = run_module("release_state", rs(state, "plan", plan={"kind": "release", "version": hostile}))
    assert bad_version["failed"] and f"plan.version={hostile!r} is not a version label" in bad_version["msg"]
    assert (state / "ledger.json").read_text() == before

    # A corrupt ledger fails every action, naming the file, and is left as it is.
    (state / "ledger.json").write_text(before[:40])
    for args in (rs(state, "get"), rs(state, "lock", release_id="r2")):
        failed = run_module("release_state", args)
        assert failed["failed"] and f"the ledger {state}/ledger.json is not valid JSON" in failed["msg"]
    assert (state / "ledger.json").read_text() == before[:40]
    assert not (state / "release.lock").exists()


def test_history_limit(state: Path) -> None:
    for n in range(4):
        ok(run_module("release_state", rs(state, "lock", release_id=f"r{n}")))
        ok(run_module("release_state", rs(state, "begin", release_id=f"r{n}", history_limit=2)))
        ok(run_module("release_state", rs(state, "fail", release_id=f"r{n}", reason="test")))
    ledger, lock = on_disk(state)
    assert [r["id"] for r in ledger["releases"]] == ["r2", "r3"] and lock is None
    assert sorted(os.listdir(state)) == [".release_state.mutex", "ledger.json"]


def test_two_runs_resuming_one_release_do_not_share_its_lock(state: Path) -> None:
    """Two operators re-run the same paused release at once: the lock is per run (its token), so the
    second is refused while the first holds it, naming the holder."""
    first = ok(run_module("release_state", rs(state, "lock", release_id="r1", lock_token=None, owner="alice@ctl")))
    assert len(first["lock_token"]) == 32, "a new token when none is given"
    second = run_module("release_state", rs(state, "lock", release_id="r1", lock_token=None, owner="bob@ctl"))
    assert second["failed"] and "held by alice@ctl (release r1)" in second["msg"], second["msg"]
    assert "token" not in second["lock"] and first["lock_token"] not in json.dumps(second), "the holder's token leaked"
    assert "another run of the same release" in second["msg"]
    ok(run_module("release_state", rs(state, "unlock", release_id="r1", lock_token=first["lock_token"])))


def test_renewals_keep_a_release_longer_than_its_ttl(state: Path) -> None:
    """A 3 s lock renewed by each step outlives its ttl; once its run stops renewing, it expires."""
    ok(run_module("release_state", rs(state, "lock", release_id="r1", lock_ttl=3)))
    ok(run_module("release_state", rs(state, "begin", release_id="r1", version="v1", lock_ttl=3)))
    started, n = time.monotonic(), 0
    while time.monotonic() - started < 7:  # more than twice the ttl
        time.sleep(0.5)
        n += 1
        ok(run_module("release_state", rs(state, "step", release_id="r1", lock_ttl=3, step={"name": f"s{n}"})))
        refused = run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl"))
        assert refused["failed"] and "held by" in refused["msg"], "taken over while it was renewed"
    renewed = ok(run_module("release_state", rs(state, "renew", lock_token="token-of-r1", lock_ttl=3)))
    assert renewed["changed"] is False and renewed["lock_state"] == "held"
    time.sleep(4.5)  # the expiry is rounded up to the second
    taken = ok(run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl")))
    assert taken["takeover"]["previous_release_id"] == "r1" and taken["takeover"]["forced"] is False
