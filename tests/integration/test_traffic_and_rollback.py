"""switchyard.release.traffic and switchyard.release.rollback run for real against the testbed's HAProxy
(the lb role) in front of the demo app (blue v1, green v2), with their ledger in a tmp_path state
directory written by release_state as a release writes it. What HAProxy shows afterwards is read
back through its Runtime API (haproxy_weight without weights)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.compose import docker, unique_name
from support.modules import run_module
from support.stack import Stack
from support.testbed import Testbed

APP = "shop"
HOSTILE_ROUTE = "api; set server be_api/api_blue state maint"
NAME_RULE = "is not an HAProxy name: use 1 to 128 of the characters A-Z a-z 0-9 _ . : -"


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    built = Stack(testbed, tmp_path_factory.mktemp("stack"), unique_name("traffic"))
    try:
        yield built.up()
    finally:
        built.down()


@pytest.fixture
def lb(stack: Stack) -> Stack:
    """The stack with all traffic on blue and both servers ready and UP, whatever the last test did."""
    ok(
        run_module(
            "haproxy_weight",
            stack.weights(
                weights={"api_blue": 256, "api_green": 0}, states={"api_blue": "ready", "api_green": "ready"}
            ),
        )
    )
    stack.wait_status({"api_blue": "UP", "api_green": "UP"})
    return stack


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """The application's state directory (not created: the modules create it)."""
    return tmp_path / "state" / APP


# -- helpers ---------------------------------------------------------------------------------------
def ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def lb_option(stack: Stack) -> dict:
    return {"dir": str(stack.lb_dir), "container": stack.lb_container}


def traffic(stack: Stack, state: Path, **args) -> dict:
    return {"app": APP, "path": str(state), "lb": lb_option(stack), "routes": ["api"], **args}


def rollback(stack: Stack, state: Path, **args) -> dict:
    return {"app": APP, "path": str(state), "lb": lb_option(stack), "routes": ["api"], "up_timeout": 30, **args}


def rs(state: Path, action: str, **args) -> dict:
    return {"app": APP, "path": str(state), "action": action, **args}


def shown(stack: Stack) -> dict:
    """color -> (weight, state) as HAProxy shows them now."""
    result = ok(run_module("haproxy_weight", {"socket": stack.socket, "backend": "be_api"}))
    return {name.split("_")[-1]: (s["weight"], s["state"]) for name, s in result["after"].items()}


def weights_shown(stack: Stack) -> dict:
    return {color: weight for color, (weight, _state) in shown(stack).items()}


def ledger(state: Path) -> dict:
    return json.loads((state / "ledger.json").read_text())


def files(state: Path) -> dict:
    """name -> content of every file in the state directory ({} when it does not exist)."""
    return {p.name: p.read_text() for p in sorted(state.iterdir())} if state.exists() else {}


def begun(state: Path, rid: str, version: str) -> str:
    """lock and begin, as release.yml does: the token of this run."""
    token = ok(run_module("release_state", rs(state, "lock", release_id=rid)))["lock_token"]
    ok(run_module("release_state", rs(state, "begin", release_id=rid, version=version, lock_token=token)))
    return token


def lease(state: Path, token: str, **extra) -> dict:
    return {"app": APP, "path": str(state), "token": token, **extra}


def release(state: Path, rid: str, version: str) -> None:
    """A whole release, as release.yml records it: lock, begin, deploy step, promote."""
    token = begun(state, rid, version)
    step = {"name": "deploy", "deployed": True}
    ok(run_module("release_state", rs(state, "step", release_id=rid, step=step, lock_token=token)))
    ok(run_module("release_state", rs(state, "promote", release_id=rid, lock_token=token)))


def green_live_blue_previous(stack: Stack, state: Path) -> None:
    """v1 promoted on blue, then v2 on green; HAProxy carries it: green 256, blue 0 (both ready)."""
    release(state, "r1", "v1")
    release(state, "r2", "v2")
    book = ledger(state)
    assert (book["live"], book["previous"]) == ("green", "blue")
    ok(run_module("traffic", traffic(stack, state, weights={"blue": 0, "green": 256})))
    assert shown(stack) == {"blue": (0, "ready"), "green": (256, "ready")}


# -- traffic ---------------------------------------------------------------------------------------
def test_shift_four_ways_reads_back_and_persists(lb: Stack, state: Path) -> None:
    args = traffic(lb, state, weights={"blue": 64, "green": 192})
    config_before = open(lb.config).read()

    check = ok(run_module("traffic", args, check=True))
    assert check["changed"] is True and check["kind"] == "haproxy"
    assert check["routes"][0]["commands"] == ["set weight be_api/api_green 192", "set weight be_api/api_blue 64"]
    assert check["weights"] == {"blue": 64, "green": 192}, "check mode says what applying leads to"
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "ready")}, "check mode sent nothing"
    assert open(lb.config).read() == config_before, "check mode wrote nothing"
    assert any(d["before_header"] == "config" for d in check["diff"])

    apply = ok(run_module("traffic", args))
    assert apply["changed"] is True
    assert apply["routes"][0]["commands"] == check["routes"][0]["commands"]
    assert apply["weights"] == weights_shown(lb) == {"blue": 64, "green": 192}
    assert apply["routes"][0]["shares"] == {"blue": 25.0, "green": 75.0}
    assert apply["servers"]["api"]["green"]["weight"] == 192

    check_again = ok(run_module("traffic", args, check=True))
    apply_again = ok(run_module("traffic", args))
    for again in (check_again, apply_again):
        assert again["changed"] is False and again["routes"][0]["commands"] == []
        assert again["weights"] == {"blue": 64, "green": 192}

    config = open(lb.config).read()
    assert "server api_blue api-blue:8000 weight 64" in config
    assert "server api_green api-green:8000 weight 192" in config
    assert not state.exists(), "without record, the ledger is not touched"


def test_read_mode_returns_the_servers_and_shares(lb: Stack, state: Path) -> None:
    ok(run_module("haproxy_weight", lb.weights(weights={"api_blue": 192, "api_green": 64})))
    before = lb.servers()
    result = ok(run_module("traffic", traffic(lb, state)))
    assert result["changed"] is False and result["kind"] == "haproxy"
    assert result["weights"] == {"blue": 192, "green": 64}
    (route,) = result["routes"]
    assert route["route"] == "api" and route["changed"] is False
    assert route["shares"] == {"blue": 75.0, "green": 25.0}
    servers = result["servers"]["api"]
    assert set(servers) == {"blue", "green"} and servers == route["after"]
    for color, server in servers.items():
        assert {"weight", "state", "up", "sessions", "status"} <= set(server)
        assert server["weight"] == before[f"api_{color}"]["weight"]
        assert server["state"] == "ready" and server["up"] is True and server["sessions"] == 0
    assert "diff" not in result and "ledger" not in result
    assert lb.servers() == before and not state.exists()


def test_record_a_step_with_the_weights_observed(lb: Stack, state: Path) -> None:
    token = begun(state, "r1", "v2")
    args = traffic(
        lb,
        state,
        weights={"blue": 192, "green": 64},
        lease=lease(state, token),
        record={"release_id": "r1", "step": {"name": "canary-25"}},
    )
    # Check mode moves nothing and records nothing.
    before = files(state)
    check = ok(run_module("traffic", args, check=True))
    assert check["changed"] is True and check["record"]["skipped"] is True
    assert files(state) == before and weights_shown(lb) == {"blue": 256, "green": 0}

    result = ok(run_module("traffic", args))
    assert result["changed"] is True and weights_shown(lb) == {"blue": 192, "green": 64}
    step = result["release"]["steps"][-1]
    assert step["name"] == "canary-25" and step["weights"] == {"blue": 192, "green": 64}
    on_disk = ledger(state)
    assert on_disk == result["ledger"]
    (entry,) = on_disk["releases"]
    assert entry["id"] == "r1" and entry["outcome"] == "running"
    assert [s["name"] for s in entry["steps"]] == ["canary-25"]
    assert entry["steps"][0]["weights"] == {"blue": 192, "green": 64}
    assert on_disk["weights"] == {"blue": 192, "green": 64}
    assert json.loads((state / "release.lock").read_text())["release_id"] == "r1", "a step keeps the lock"
    # The same step again changes nothing.
    again = ok(run_module("traffic", args))
    assert again["changed"] is False and ledger(state) == on_disk


@pytest.mark.parametrize(
    "record",
    [
        {"release_id": "r1", "step": {"name": "canary-50"}},
        # Ending a release too: a run that lost its lock changes nothing (the module's documentation).
        {"release_id": "r1", "action": "promote"},
    ],
    ids=["step", "promote"],
)
def test_record_under_another_releases_lock_moves_nothing(lb: Stack, state: Path, record: dict) -> None:
    token = begun(state, "r1", "v2")
    # r1 lost its lock: another run took it over.
    ok(run_module("release_state", rs(state, "lock", release_id="r2", owner="bob@ctl", force=True)))
    before = files(state)
    args = traffic(lb, state, weights={"blue": 128, "green": 128}, lease=lease(state, token), record=record)
    result = run_module("traffic", args)
    assert result["failed"], result
    assert result["msg"].startswith("refusing to act: action=renew needs the release lock of shop"), result["msg"]
    assert "held by bob@ctl (release r2)" in result["msg"] and "this run has lost it" in result["msg"]
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "ready")}, "a run that lost its lock moved traffic"
    assert result.get("routes") == [], "nothing was moved"
    assert files(state) == before


def test_record_without_a_step_name_is_refused_before_anything_moves(lb: Stack, state: Path) -> None:
    token = begun(state, "r1", "v2")
    before = files(state)
    args = traffic(
        lb, state, weights={"blue": 128, "green": 128}, lease=lease(state, token), record={"release_id": "r1"}
    )
    result = run_module("traffic", args)
    assert result["failed"] and "record.step.name is required" in result["msg"], result.get("msg")
    # A record without a lease is refused too: only the holder of the lock records.
    args = traffic(lb, state, weights={"blue": 128, "green": 128}, record={"release_id": "r1", "step": {"name": "x"}})
    result = run_module("traffic", args)
    assert result["failed"] and result["msg"].startswith("record needs lease"), result.get("msg")
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "ready")}, "bad input must not move traffic"
    assert files(state) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"weights": {"blue": 300}}, "weights.blue=300: a weight is from 0 to 256"),
        ({"weights": {"green": -1}}, "weights.green=-1: a weight is from 0 to 256"),
        (
            {"states": {"green": "paused"}},
            "value of green must be one of: ready, drain, maint, got: paused found in states",
        ),
        ({"routes": []}, "routes: give at least one route"),
        ({"routes": ["web"], "weights": {"green": 10}}, "backend='be_web' is not a backend of this HAProxy"),
        ({"routes": ["web"]}, "backend='be_web' is not a backend of this HAProxy"),
        ({"routes": [HOSTILE_ROUTE], "weights": {"green": 10}}, f"routes: {HOSTILE_ROUTE!r} {NAME_RULE}"),
        ({"routes": [HOSTILE_ROUTE]}, f"routes: {HOSTILE_ROUTE!r} {NAME_RULE}"),
        ({"routes": ["api", HOSTILE_ROUTE], "weights": {"green": 10}}, f"routes: {HOSTILE_ROUTE!r} {NAME_RULE}"),
        ({"routes": ["api", "web"], "weights": {"green": 10}}, "backend='be_web' is not a backend"),
        ({"weights": {"blue": 0, "green": 0}}, "would have zero total weight"),
    ],
    ids=[
        "weight-300",
        "weight-negative",
        "state-unknown",
        "no-route",
        "unknown-route",
        "unknown-route-read",
        "hostile-route",
        "hostile-route-read",
        "hostile-second-route",
        "unknown-second-route",
        "zero-capacity",
    ],
)
def test_bad_input_is_refused_and_changes_nothing(lb: Stack, state: Path, args: dict, message: str) -> None:
    before = lb.servers()
    config = open(lb.config).read()
    result = run_module("traffic", traffic(lb, state, **args))
    assert result["failed"] and message in result["msg"], result["msg"]
    assert lb.servers() == before, "HAProxy was changed by a refused run"
    assert before["api_blue"]["state"] == "ready" and before["api_green"]["weight"] == 0
    assert open(lb.config).read() == config and not state.exists()


def test_require_idle(lb: Stack, state: Path) -> None:
    ok(run_module("traffic", traffic(lb, state, weights={"blue": 192, "green": 64})))
    # Green back to weight 0, and idle: passes.
    idle = ok(run_module("traffic", traffic(lb, state, weights={"blue": 256, "green": 0}, require_idle="green")))
    assert idle["changed"] is True and weights_shown(lb) == {"blue": 256, "green": 0}
    assert ok(run_module("traffic", traffic(lb, state, require_idle="green")))["changed"] is False
    # Blue carries the traffic: not idle.
    busy = run_module("traffic", traffic(lb, state, require_idle="blue"))
    assert busy["failed"], busy
    assert "blue is not idle: route api, color blue has weight 256" in busy["msg"], busy["msg"]
    assert "it must be at weight 0 and drained" in busy["msg"]
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "ready")}


def test_require_idle_waits_until_the_request_log_shows_the_color_served_nothing(lb: Stack, state: Path) -> None:
    """Weight 0 and no session are not enough: green still answers the header canary (a trusted client naming it),
    so the LB's log shows it serving and the wait fails; once those requests stop, it passes after idle_seconds."""
    stop = threading.Event()

    def canary_client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                session.get(lb.url + "/", headers={"X-Canary": "green"}, timeout=5)
                stop.wait(0.2)

    client = threading.Thread(target=canary_client, daemon=True)
    client.start()
    try:
        # A request in flight when the module reads the LB's sessions is refused there, before the log is read (it
        # happened once in a clean run on a loaded machine): busy either way; the log's answer is what this tests.
        for _attempt in range(5):
            busy = run_module("traffic", traffic(lb, state, require_idle="green", idle_seconds=2, idle_timeout=3))
            assert busy["failed"], busy
            if "current sessions" not in busy["msg"]:
                break
            assert "color green has weight 0 and" in busy["msg"], busy["msg"]
    finally:
        stop.set()
        client.join(10)
    assert "green is not idle: the LB logged" in busy["msg"], busy
    assert "it must serve none for 2 s before it stops" in busy["msg"]
    quiet = ok(run_module("traffic", traffic(lb, state, require_idle="green", idle_seconds=2, idle_timeout=10)))
    assert quiet["idle"]["color"] == "green" and quiet["idle"]["seconds"] == 2


# -- rollback --------------------------------------------------------------------------------------
def test_rollback_check_then_apply_then_back_again(lb: Stack, state: Path) -> None:
    green_live_blue_previous(lb, state)
    args = rollback(lb, state, reason="operator: v2 is broken")
    before = files(state)

    check = ok(run_module("rollback", args, check=True))
    assert check["changed"] is True
    plan = check["plan"]
    assert (plan["mode"], plan["to"], plan["away"], plan["version"], plan["undoes"]) == (
        "previous",
        "blue",
        "green",
        "v1",
        "r2",
    )
    assert plan["weights"] == {"blue": 256, "green": 0} and plan["refused"] is None
    assert check["routes"][0]["commands"] == [
        "set weight be_api/api_blue 256",
        "set weight be_api/api_green 0",
        "set server be_api/api_green state maint",
    ]
    assert "ledger" not in check
    assert shown(lb) == {"blue": (0, "ready"), "green": (256, "ready")}, "check mode sent nothing"
    assert files(state) == before, "check mode took no lock and wrote nothing"

    apply = ok(run_module("rollback", args))
    assert apply["changed"] is True and apply["weights"] == {"blue": 256, "green": 0}
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "maint")}
    book = ledger(state)
    assert book == apply["ledger"]
    assert (book["live"], book["previous"]) == ("blue", "green")
    assert book["colors"]["blue"]["state"] == "live" and book["colors"]["green"]["state"] == "standby"
    assert book["weights"] == {"blue": 256, "green": 0}
    entry = book["releases"][-1]
    assert entry["id"] == apply["plan"]["id"] == apply["release"]["id"] and entry["kind"] == "rollback"
    assert entry["id"] != plan["id"], "each run is its own rollback (check mode plans an id it does not use)"
    assert (entry["outcome"], entry["color"], entry["from_color"]) == ("done", "blue", "green")
    assert entry["reason"] == "operator: v2 is broken"
    assert not (state / "release.lock").exists() and apply["lock_state"] == "free"

    # A second rollback undoes the first one: back to green.
    second = ok(run_module("rollback", args))
    assert second["plan"]["to"] == "green" and second["plan"]["version"] == "v2"
    assert shown(lb) == {"blue": (0, "maint"), "green": (256, "ready")}
    book = ledger(state)
    assert (book["live"], book["previous"]) == ("green", "blue")
    assert [r["outcome"] for r in book["releases"] if r["kind"] == "rollback"] == ["done", "done"]
    assert not (state / "release.lock").exists()


def test_rollback_default_reason_names_the_owner(lb: Stack, state: Path) -> None:
    green_live_blue_previous(lb, state)
    # A route carrying a second Runtime API command: refused before the lock, the ledger or HAProxy is touched.
    before = files(state)
    refused = run_module("rollback", rollback(lb, state, routes=[HOSTILE_ROUTE], owner="ops@ctl"))
    assert refused["failed"] and f"routes: {HOSTILE_ROUTE!r} {NAME_RULE}" in refused["msg"], refused["msg"]
    assert files(state) == before and shown(lb) == {"blue": (0, "ready"), "green": (256, "ready")}
    result = run_module("rollback", rollback(lb, state, owner="ops@ctl"))
    assert not result.get("failed"), result.get("msg")
    entry = ledger(state)["releases"][-1]
    assert entry["outcome"] == "done" and entry["reason"] == "rollback by ops@ctl"
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "maint")}
    assert not (state / "release.lock").exists()


def test_rollback_with_nothing_to_roll_back(lb: Stack, state: Path) -> None:
    result = run_module("rollback", rollback(lb, state))
    assert result["failed"] and "Nothing to roll back for shop" in result["msg"], result["msg"]
    assert not state.exists() and not state.parent.exists(), "a refused rollback creates nothing"
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "ready")}
    # Nor after a single release: there is no previous color.
    release(state, "r1", "v1")
    before = files(state)
    result = run_module("rollback", rollback(lb, state))
    assert result["failed"] and "Nothing to roll back for shop" in result["msg"], result["msg"]
    assert files(state) == before


def test_rollback_without_the_admin_socket_goes_through_a_verified_reload(lb: Stack, state: Path) -> None:
    """The admin socket is gone (removed by hand, a broken mount): the rollback writes the weights to the
    configuration and the states to the server-state file, reloads the master, and verifies both through
    the master CLI; the ledger records what HAProxy shows after the reload."""
    green_live_blue_previous(lb, state)
    args = rollback(lb, state, reason="operator")
    away = lb.socket + ".away"
    os.rename(lb.socket, away)
    try:
        check = ok(run_module("rollback", args, check=True))
        assert check["routes"][0]["method"] == "reload" and "admin.sock" in check["routes"][0]["socket_error"]
        done = ok(run_module("rollback", args))
        recreated = os.path.exists(lb.socket)
    finally:
        if os.path.exists(lb.socket):
            os.unlink(away)
        else:
            os.rename(away, lb.socket)
    (route,) = done["routes"]
    assert route["method"] == "reload" and route["changed"], route
    assert {c: (v["weight"], v["state"]) for c, v in route["after"].items()} == {
        "blue": (256, "ready"),
        "green": (0, "maint"),
    }
    print(f"admin socket re-created by the reload: {recreated}")
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "maint")}, "weights AND states went through"
    book = ledger(state)
    assert book["releases"][-1]["outcome"] == "done" and book["weights"] == {"blue": 256, "green": 0}
    assert (book["live"], book["previous"]) == ("blue", "green")
    assert not (state / "release.lock").exists()
    config = open(lb.config).read()
    assert "server api_blue api-blue:8000 weight 256" in config and "server api_green api-green:8000 weight 0" in config


def test_rollback_that_cannot_reach_the_lb_is_recorded_failed_and_unlocked(lb: Stack, state: Path) -> None:
    """The LB container is down: nothing answers and nothing can be reloaded. The rollback is recorded
    failed, its lock released; once the LB is back, a new attempt converges."""
    green_live_blue_previous(lb, state)
    args = rollback(lb, state, reason="operator")
    docker("stop", "--time", "5", lb.lb_container)
    try:
        failed = run_module("rollback", args)
    finally:
        docker("start", lb.lb_container)
    assert failed["failed"] and "the new configuration was not validated" in failed["msg"], failed["msg"]
    assert "is not running" in failed["msg"]
    book = ledger(state)
    entry = book["releases"][-1]
    assert entry["kind"] == "rollback" and entry["outcome"] == "failed", entry
    assert entry["reason"].startswith("moving the traffic to blue failed: route api:"), entry["reason"]
    assert (book["live"], book["previous"]) == ("green", "blue"), "live color unchanged"
    assert not (state / "release.lock").exists(), "the failed rollback released its lock"
    lb.wait_status({"api_blue": "UP", "api_green": "UP"})

    # The LB is back: a new attempt is not refused by the failed one's lock, and finishes the move.
    retry = ok(run_module("rollback", args))
    assert retry["takeover"] is None and retry["plan"]["mode"] == "retry"
    assert shown(lb) == {"blue": (256, "ready"), "green": (0, "maint")}
    book = ledger(state)
    assert (book["live"], book["previous"]) == ("blue", "green")
    assert [r["outcome"] for r in book["releases"] if r["kind"] == "rollback"] == ["failed", "done"]
    assert book["takeovers"] == [] and not (state / "release.lock").exists()


def test_best_effort_moves_every_route_it_can_and_names_the_one_it_could_not(lb: Stack, state: Path) -> None:
    """The emergency path (the restore after a failed release): a route that fails does not keep the
    others from going back; the failure names it, and the result says what moved."""
    args = traffic(lb, state, routes=["api", "web"], weights={"blue": 64, "green": 192}, best_effort=True)
    result = run_module("traffic", args)
    assert result["failed"] and "route web:" in result["msg"] and "be_web" in result["msg"], result["msg"]
    moved = {r["route"]: r for r in result["routes"]}
    assert moved["api"]["changed"] and moved["web"]["failed"], result["routes"]
    assert result["weights"] == {"blue": 64, "green": 192} and weights_shown(lb) == {"blue": 64, "green": 192}
    # Without best_effort, the same call is refused before anything moves (see the bad-input cases).
    again = ok(run_module("traffic", traffic(lb, state, weights={"blue": 64, "green": 192}, best_effort=True)))
    assert again["changed"] is False
