"""End to end: playbooks/drill.yml, a rehearsed rollback, on an application released v1 then v2.

- a partial drill (10 %) and a full drill under constant load: no request fails, every request goes back to the
  live color, the ledger and status.yml show each drill with its RTO; --check moves nothing;
- refused, with nothing changed, when the previous color is stopped;
- the target killed for real in the middle of a full drill's hold: traffic ends on the live color, the lock is
  released, the ledger says the drill failed and why;
- the playbook's process group SIGTERMed mid-hold (the module puts the traffic back itself), then SIGKILLed mid-hold
  (the traffic stays moved): the next drill.yml puts it back from the ledger's "running" record, then drills;
- a forced rollback during a drill's hold: the drill does not undo it; a drill to the color it took out is refused;
- refused after a contract retired the previous color;
- a full drill behind Traefik (the LB interface, another kind).

The tests share one application and run in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)

DRILL = {"switchyard_drill_hold_seconds": 2, "switchyard_drill_measure_seconds": 2}


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("drill"), kind="drl", reports=False)
    released.extra["switchyard_rollback_window"] = 0
    try:
        released.play("release.yml", switchyard_version="v1")
        released.play("release.yml", switchyard_version="v2")
        yield released
    finally:
        released.down()


def placed(servers: dict) -> dict:
    """{color: (weight, state)}: what a drill sets and restores (health comes and goes with the containers)."""
    return {color: (server["weight"], server["state"]) for color, server in servers.items()}


def drills(app: ReleasedApp) -> list[dict]:
    return app.ledger().get("drills", [])


def test_a_partial_then_a_full_drill_under_load_fail_nothing_and_end_on_the_live_color(app) -> None:
    before = app.lb_servers()
    assert (app.ledger()["live"], app.ledger()["previous"]) == ("green", "blue")
    checked = app.play("drill.yml", "--check")
    assert "Would move 10 % of new traffic" in checked.stdout and drills(app) == []
    assert app.lb_servers() == before and app.lock() is None

    load = Load(app.url + "/", rate=100, seconds=120, record=True).start()
    started = time.time()
    app.play("drill.yml", **DRILL)
    app.play("drill.yml", switchyard_drill_full=True, **DRILL)
    ended = time.time()
    time.sleep(0.5)
    load.stop()

    failed = [a for a in load.records if a.status != 200]
    assert not failed, f"{len(failed)} requests failed during the drills: {failed[:5]}"
    during = load.between(started, ended)
    assert {a.color for a in during} == {"blue", "green"}, "the previous color never served real traffic"
    assert {a.color for a in load.between(ended, ended + 60)} == {"green"}
    assert app.lb_servers() == before, "the weights and states must be exactly as before"
    assert app.lock() is None

    partial, full = drills(app)
    for drill, percent in ((partial, 10), (full, 100)):
        assert (drill["to"], drill["from"], drill["outcome"], drill["percent"]) == ("blue", "green", "done", percent)
        assert drill["rto_ms"] is not None and 0 < drill["rto_ms"] < 10_000, drill
        assert drill["back_ms"] is not None and drill["failed_requests"] == 0, drill
        # HAProxy drops log lines when the Docker daemon is slow to read its output (CI saw one probe in some runs;
        # test_faults stalls the daemon to show it). Such probes are of no known color: a few may miss, no more.
        assert drill["probes"]["failed"] == 0 and drill["probes"]["unlogged"] <= max(1, drill["probes"]["sent"] // 100)
    assert full["full"] and full["observed_percent"] == 100.0, full
    assert 0 < partial["observed_percent"] < 50, partial
    assert [r["kind"] for r in app.ledger()["releases"]] == ["release", "release"], "a drill is not a release"

    status = app.play("status.yml")
    assert f"last drill: {full['id']}" in status.stdout and "all new traffic to blue" in status.stdout, status.stdout


def test_a_drill_is_refused_with_nothing_changed_when_the_previous_color_is_stopped(app) -> None:
    before, recorded = app.lb_servers(), len(drills(app))
    docker("compose", "-p", f"{app.app}-blue", "stop")
    try:
        result = app.play("drill.yml", ok=False, **DRILL)
        assert "blue is not warm" in result.stdout and "not running and healthy" in result.stdout, result.stdout[-3000:]
        assert placed(app.lb_servers()) == placed(before) and app.lock() is None and len(drills(app)) == recorded
    finally:
        start_blue(app)


def start_blue(app: ReleasedApp) -> None:
    docker("compose", "-p", f"{app.app}-blue", "start")
    deadline = time.monotonic() + 60
    while not app.lb_servers()["blue"]["up"]:
        assert time.monotonic() < deadline, "blue did not come back UP"
        time.sleep(0.5)


def test_a_target_killed_during_the_hold_ends_with_traffic_on_the_live_color(app) -> None:
    before = app.lb_servers()
    load = Load(app.url + "/", rate=50, seconds=120, record=True).start()
    drill = app.start("drill.yml", **{**DRILL, "switchyard_drill_full": True, "switchyard_drill_hold_seconds": 60})
    deadline = time.monotonic() + 60
    while app.lb_servers()["blue"]["weight"] != 256:
        assert time.monotonic() < deadline and drill.poll() is None, "the drill never moved the traffic"
        time.sleep(0.1)
    docker("kill", *app.containers("blue"))
    killed = time.time()
    output, _err = drill.communicate(timeout=120)
    time.sleep(1)
    settled = time.time()
    time.sleep(1)
    load.stop()
    assert drill.returncode != 0, output[-3000:]
    assert "Drill of" in output and "failed" in output and "Lock: released." in output, output[-3000:]
    assert placed(app.lb_servers()) == placed(before)
    assert app.lock() is None
    last = drills(app)[-1]
    assert last["outcome"] == "failed" and last["reason"], last
    assert time.time() - killed < 30, "the hold of 60 s must end when the target dies"
    answers = load.between(settled, settled + 1)
    assert answers and all(a.status == 200 and a.color == "green" for a in answers), answers[:5]
    start_blue(app)  # warm again for the drills below


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant at once: ansible's workers leave its process group (setsid), so
    killing the group alone would leave the drill module running to its end."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def shifted_drill(app: ReleasedApp, **extra):
    """drill.yml in its own process group, full, with a long hold; returned once blue has all new traffic."""
    extra = {**DRILL, "switchyard_drill_full": True, "switchyard_drill_hold_seconds": 60, **extra}
    drill = app.start("drill.yml", **extra)
    deadline = time.monotonic() + 60
    while app.lb_servers()["blue"]["weight"] != 256:
        if drill.poll() is not None or time.monotonic() > deadline:
            output = drill.communicate()[0][-3000:]
            raise AssertionError(f"the drill never moved the traffic: {output}; lock {app.lock()}; {drills(app)[-2:]}")
        time.sleep(0.1)
    return drill


def test_a_drill_killed_mid_hold_is_put_back_by_itself_or_by_the_next_drill(app) -> None:
    before = app.lb_servers()
    load = Load(app.url + "/", rate=20, seconds=180, record=True).start()
    # SIGTERM (a controller stopped, an SSH session closed): the module puts the traffic back, records, unlocks.
    drill = shifted_drill(app)
    os.killpg(drill.pid, signal.SIGTERM)
    drill.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while drills(app)[-1]["outcome"] == "running":  # the module outlives ansible-playbook by its restore
        assert time.monotonic() < deadline, drills(app)[-1]
        time.sleep(0.2)
    termed = drills(app)[-1]
    assert (termed["outcome"], termed["restored"]) == ("failed", True) and "SIGTERM" in termed["reason"], termed
    assert placed(app.lb_servers()) == placed(before) and app.lock() is None

    # SIGKILL of the whole tree, the module too: the traffic stays on blue, the lock until its ttl, the record
    # "running".
    drill = shifted_drill(app, switchyard_lock_ttl=6)
    kill_tree(drill.pid)
    drill.wait(30)
    time.sleep(1)
    assert app.lb_servers()["blue"]["weight"] == 256 and drills(app)[-1]["outcome"] == "running"
    expires = datetime.fromisoformat(app.lock()["expires_at"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, expires - time.time() + 0.5))
    result = app.play("drill.yml", **DRILL)  # puts the killed drill's traffic back first, then drills
    time.sleep(0.5)
    settled = time.time()
    time.sleep(1)
    load.stop()
    killed, last = drills(app)[-2:]
    assert (killed["outcome"], killed["restored"]) == ("failed", True) and "put back by drill" in killed["reason"]
    assert last["outcome"] == "done" and last["percent"] == 10, last
    assert placed(app.lb_servers()) == placed(before) and app.lock() is None, result.stdout[-2000:]
    tail = load.between(settled, settled + 1)
    assert tail and all(a.status == 200 and a.color == "green" for a in tail), tail[:5]


def test_a_forced_rollback_during_a_drill_is_not_undone(app) -> None:
    load = Load(app.url + "/", rate=20, seconds=120, record=True).start()
    drill = shifted_drill(app)
    rolled = app.play("rollback.yml", switchyard_force_lock=True)
    output, _err = drill.communicate(timeout=120)
    settled = time.time()
    time.sleep(1)
    load.stop()
    assert drill.returncode != 0 and "taken over" in output, output[-3000:]
    assert "Put back by this rescue" not in output, output[-3000:]
    ledger = app.ledger()
    assert (ledger["live"], ledger["previous"]) == ("blue", "green"), rolled.stdout[-2000:]
    servers = app.lb_servers()
    assert (servers["blue"]["weight"], servers["green"]["weight"]) == (256, 0), "the drill undid the rollback"
    last = drills(app)[-1]
    assert last["outcome"] == "failed" and last.get("restored") is None and "taken over" in last["reason"], last
    tail = load.between(settled, settled + 1)
    assert tail and all(a.status == 200 and a.color == "blue" for a in tail), tail[:5]
    # green is the version the rollback took out: a drill would send users back to it.
    refused = app.play("drill.yml", ok=False, **DRILL)
    assert "is the version an incident took out" in refused.stdout, refused.stdout[-3000:]
    assert app.lock() is None and drills(app)[-1] == last


def test_a_drill_is_refused_after_a_contract(app) -> None:
    app.play("contract.yml")
    previous = "green"  # since the forced rollback above
    assert app.ledger()["colors"][previous]["state"] == "retired"
    result = app.play("drill.yml", ok=False, **DRILL)
    assert "no previous color to drill to" in result.stdout and "retired by a contract" in result.stdout, result.stdout[
        -3000:
    ]
    assert app.lock() is None


def test_a_full_drill_behind_traefik_under_load(testbed, tmp_path) -> None:
    """The same drill through the LB interface on another kind: Traefik's watched files and JSON access log."""
    app = ReleasedApp(tmp_path, kind="drt", reports=False, lb="traefik")
    app.extra.update(switchyard_canary_steps=[100], switchyard_gate_enabled=False)
    try:
        app.play("release.yml", switchyard_version="v1")
        app.play("release.yml", switchyard_version="v2")
        before = app.lb_servers()
        load = Load(app.url + "/", rate=50, seconds=60, record=True).start()
        app.play("drill.yml", switchyard_drill_full=True, **DRILL)
        load.stop()
        assert not [a for a in load.records if a.status != 200]
        assert {a.color for a in load.records} == {"blue", "green"}
        assert placed(app.lb_servers()) == placed(before) and app.lock() is None
        (drill,) = drills(app)
        assert (drill["lb"], drill["outcome"], drill["failed_requests"]) == ("traefik", "done", 0), drill
        assert drill["rto_ms"] is not None and drill["back_ms"] is not None, drill
        assert drill["probes"]["unlogged"] <= max(1, drill["probes"]["sent"] // 100), drill
    finally:
        app.down()
