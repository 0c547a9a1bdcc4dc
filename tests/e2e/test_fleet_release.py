"""End to end: a fleet of Docker hosts released as one (docs/fleet.md).

The hosts are the fleet testbed's (tests/testbed/fleet.sh): network namespaces with their own Docker engine and sshd,
reached over SSH through the inventory like production, sharing one PostgreSQL. Each test has an application, a port
and a database of its own.
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
from support.fleet import FleetApp, host_docker, host_engine
from support.load import Load

pytestmark = pytest.mark.timeout(1200)


@pytest.fixture
def fleet_app(testbed, tmp_path) -> Iterator[FleetApp]:
    apps: list[FleetApp] = []

    def make(hosts: tuple[str, ...] = ("h1", "h2")) -> FleetApp:
        apps.append(FleetApp(tmp_path / f"app{len(apps)}", hosts))
        return apps[-1]

    try:
        yield make
    finally:
        for app in apps:
            app.down()


def step_times(app: FleetApp, host: str, name: str, kind: str = "release") -> str:
    return next(s["at"] for s in app.last_release(host, kind)["steps"] if s["name"] == name)


def fleet_page(app: FleetApp, first_release_id: str) -> dict:
    """The fleet's report of a run (its JSON; the page is beside it), named after the first host's release."""
    return json.loads((app.workdir / "reports" / f"fleet-{first_release_id}.json").read_text())


def utc_epoch(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_a_fleet_canary_moves_every_host_together_and_migrates_once(fleet_app) -> None:
    app = fleet_app(("h1", "h2", "h3"))
    app.extra["switchyard_report_enabled"] = True
    app.play("release.yml", "--limit", "h1,h2", switchyard_version="v1")
    # h3 joins the released fleet: a first release cannot move with the others' canary steps. Refused before anything
    # changes, saying what to run.
    before = {h: app.ledger(h) for h in app.hosts}
    refused = app.play("release.yml", ok=False, switchyard_version="v2")
    assert "h1, h2: steps 25 %, 100 %; h3: never released" in refused.stdout, refused.stdout[-3000:]
    assert "-l h3 -e switchyard_version=<that version>" in refused.stdout
    assert {h: app.ledger(h) for h in app.hosts} == before and not app.state("h3").joinpath("ledger.json").exists()
    app.play("release.yml", "--limit", "h3", switchyard_version="v1")
    assert app.versions() == {"h1": "v1", "h2": "v1", "h3": "v1"}
    loads = {h: Load(app.url(h) + "/", rate=30, seconds=300).start() for h in app.hosts}
    app.play("release.yml", switchyard_version="v2")
    for load in loads.values():
        load.stop()
    assert app.versions() == {"h1": "v2", "h2": "v2", "h3": "v2"}
    for host, load in loads.items():
        assert not [s for s in load.answers if s != 200], f"{host}: {load.failures()}"
    releases = {h: app.last_release(h) for h in app.hosts}
    assert {h: r["outcome"] for h, r in releases.items()} == {"h1": "promoted", "h2": "promoted", "h3": "promoted"}
    # Together: no host shifted traffic before every host was deployed, nor promoted before every host passed its steps.
    assert max(step_times(app, h, "deploy") for h in app.hosts) <= min(
        step_times(app, h, "canary-25") for h in app.hosts
    )
    assert max(step_times(app, h, "canary-25") for h in app.hosts) <= min(
        step_times(app, h, "promote") for h in app.hosts
    )
    # Once: the migrations ran on the batch's first host only, under its release, and every ledger says so.
    history = app.migrations_applied()
    v2_rows = [row for row in history if row[0] == "2"]
    assert v2_rows and {row[2] for row in v2_rows} == {releases["h1"]["id"]}, history
    for host in app.hosts:
        expand = next(s for s in releases[host]["steps"] if s["name"] == "expand")
        assert expand["ran_on"] == "h1"
        assert [str(v) for v in expand["migrations_applied"]] == ["2"]
        assert app.lock(host) is None

    # The controller's view: every host on v2.
    # Run again: nothing to do on any host, nothing changes.
    again = app.play("release.yml", switchyard_version="v2")
    assert again.stdout.count("v2 is already live on") == 3, again.stdout[-3000:]
    assert {h: app.last_release(h)["id"] for h in app.hosts} == {h: r["id"] for h, r in releases.items()}
    # One page for the fleet on the controller, next to each host's, says the same.
    fleet = fleet_page(app, releases["h1"]["id"])
    assert fleet["ok"] and fleet["line"] == f"{app.app}: v2 on every host (3: h1, h2, h3)", fleet
    assert [h["page"] for h in fleet["hosts"]] == [f"{r['id']}.html" for r in releases.values()]
    assert all((app.workdir / "reports" / h["page"]).is_file() for h in fleet["hosts"])
    status = app.play("status.yml")
    assert f"{app.app}: v2 on every host (3: h1, h2, h3)" in status.stdout, status.stdout[-3000:]

    # The contract, once the rollback window (15 s) has passed: every host's old color retired, the contract migration
    # run once, on h1, after every host stopped its old color.
    time.sleep(max(0.0, 16 - (time.time() - min(utc_epoch(step_times(app, h, "promote")) for h in app.hosts))))
    app.play("contract.yml")
    contract_rows = [row for row in app.migrations_applied() if row[1] == "contract"]
    assert {row[2] for row in contract_rows} == {app.last_release("h1", "contract")["id"]}, contract_rows
    for host in app.hosts:
        ledger = app.ledger(host)
        assert ledger["colors"]["blue"]["state"] == "retired", (host, ledger["colors"])
        assert ledger["migrations"]["contracted"], (host, ledger["migrations"])
        assert not host_docker(
            host, "ps", "-q", "--filter", f"label=com.docker.compose.project={app.app}-blue"
        ).stdout.split()
    stops = [step_times(app, h, "stop-old", "contract") for h in app.hosts]
    assert max(stops) <= min(step_times(app, h, "contract", "contract") for h in app.hosts)


def test_a_canary_that_fails_on_one_host_is_rolled_back_on_every_host(fleet_app) -> None:
    app = fleet_app(("h1", "h2"))
    app.extra["switchyard_report_enabled"] = True
    # The migrations as the application's own Compose jobs (the demo image's Alembic): run once, in h1's project.
    app.extra.update(
        switchyard_migrations_runner="compose_job",
        switchyard_migrations_dir="",
        switchyard_migrations_jobs={p: {"service": "migrate", "image_from": "api"} for p in ("expand", "migrate")},
    )
    app.play("release.yml", switchyard_version="v1")
    expand = {h: next(s for s in app.last_release(h)["steps"] if s["name"] == "expand") for h in app.hosts}
    assert expand["h1"]["runner"] == "compose_job" and expand["h1"]["job"]["rc"] == 0, expand["h1"]
    assert expand["h2"]["ran_on"] == "h1" and expand["h2"]["job"] == expand["h1"]["job"], expand["h2"]
    # h2's candidate answers half of its requests with an error; h1's is healthy.
    app.host_vars["h2"] = {"switchyard_candidate_env": {"FAIL_RATE": "0.5"}}
    loads = {h: Load(app.url(h) + "/", rate=30, seconds=300).start() for h in app.hosts}
    result = app.play("release.yml", ok=False, switchyard_version="v2")
    for load in loads.values():
        load.stop()
    assert app.versions() == {"h1": "v1", "h2": "v1"}
    for host in app.hosts:
        release = app.last_release(host)
        assert release["outcome"] == "rolled_back", release
        assert app.lock(host) is None
    # One gate over both hosts: h2's own rollback rolled every host back, at the same step, for the same reason.
    for host in app.hosts:
        reason = app.last_release(host)["reason"]
        assert "canary gate at 25 % says rollback" in reason and "host: h2 rolled back on its own" in reason, reason
        verdict = next(s for s in app.last_release(host)["steps"] if s["name"] == "canary-25")["verdict"]
        assert verdict["verdict"] == "rollback" and set(verdict["hosts"]) == {"h1", "h2"}, verdict
    assert "h2 rolled back on its own" in result.stdout
    # The fleet's page: both hosts rolled back, both on v1 (consistent), and the step and reason where it happened.
    fleet = fleet_page(app, app.last_release("h1")["id"])
    assert not fleet["ok"] and fleet["consistent"] and fleet["outcomes"] == {"rolled_back": ["h1", "h2"]}, fleet
    assert {h["host"]: h["failed_step"] for h in fleet["hosts"]} == {"h1": "canary-25", "h2": "canary-25"}, fleet
    canary = next(s for s in fleet["steps"] if s["name"] == "canary-25")
    assert canary["gate"]["verdict"] == "rollback" and "h2 rolled back on its own" in canary["gate"]["reason"]
    # Only h2's failing candidate lost requests (the gate's rollback limits how many); h1's users saw none.
    assert not [s for s in loads["h1"].answers if s != 200], loads["h1"].failures()
    # Check mode on the fleet: each host shows its plan, and nothing changes anywhere.
    ledgers = {h: app.ledger(h) for h in app.hosts}
    planned = app.play("release.yml", "--check", switchyard_version="v2")
    assert planned.stdout.count('"candidate": "green"') >= 2, planned.stdout[-3000:]
    assert {h: app.ledger(h) for h in app.hosts} == ledgers and app.versions() == {"h1": "v1", "h2": "v1"}


def test_a_wave_releases_one_batch_after_the_other(fleet_app) -> None:
    app = fleet_app(("h1", "h2"))
    app.play("release.yml", switchyard_version="v1")  # both at once: the waves are v2's
    # Wave mode in the inventory: the play's serial never saw it, and one batch of both hosts would not be a wave.
    app.host_vars = {h: {"switchyard_fleet_mode": "wave"} for h in app.hosts}
    refused = app.play("release.yml", ok=False, switchyard_version="v2")
    assert "switchyard_fleet_mode=wave is set where the play's serial cannot see it" in refused.stdout
    assert app.versions() == {"h1": "v1", "h2": "v1"} and {app.last_release(h)["version"] for h in app.hosts} == {"v1"}
    app.host_vars = {}
    app.extra["switchyard_report_enabled"] = True
    app.play("release.yml", switchyard_version="v2", switchyard_fleet_mode="wave", switchyard_serial=1)
    assert app.versions() == {"h1": "v2", "h2": "v2"}
    # The fleet's page is drawn again after each wave, with the earlier waves' hosts on it.
    fleet = fleet_page(app, app.last_release("h1")["id"])
    assert fleet["ok"] and [h["host"] for h in fleet["hosts"]] == ["h1", "h2"] and not fleet["missing"], fleet
    # One after the other: h2 was deployed only once h1 was promoted.
    assert step_times(app, "h1", "promote") <= step_times(app, "h2", "deploy")
    # Each batch ran the migrations it found pending: h1's batch applied them, h2's found none left.
    expand = {h: next(s for s in app.last_release(h)["steps"] if s["name"] == "expand") for h in app.hosts}
    assert [str(v) for v in expand["h1"]["migrations_applied"]] == ["2"]
    assert expand["h2"]["migrations_applied"] == []


def test_a_host_whose_engine_stops_mid_release_takes_the_batch_back_and_a_rerun_converges(fleet_app) -> None:
    app = fleet_app(("h1", "h2"))
    app.play("release.yml", switchyard_version="v1")
    loads = {h: Load(app.url(h) + "/", rate=30, seconds=300).start() for h in app.hosts}
    proc = app.start("release.yml", switchyard_version="v2", switchyard_canary_window=6)
    try:
        deadline = time.monotonic() + 300
        while not any(s["name"] == "canary-25" for s in app.last_release("h2").get("steps", [])):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the release did not reach its first canary step"
            time.sleep(0.5)
        host_engine("stop", "h2")
        output = proc.communicate(timeout=600)[0]
        assert proc.returncode != 0, output[-5000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        host_engine("start", "h2")
    for load in loads.values():
        load.stop()
    # The engine's containers kept running (--live-restore): both hosts answer, and both are back on v1.
    assert app.versions() == {"h1": "v1", "h2": "v1"}
    for host in app.hosts:
        assert app.lock(host) is None
        assert not [s for s in loads[host].answers if s != 200], f"{host}: {loads[host].failures()}"
    # h1 went back because h2 could not be observed (the fleet gate fails closed, naming it); h2's traffic went back
    # through HAProxy's Runtime API, but without its engine the change could not be validated into haproxy.cfg: its
    # ledger says failed, and why.
    assert app.last_release("h1")["outcome"] == "rolled_back"
    assert "h2 not observed" in app.last_release("h1")["reason"], app.last_release("h1")["reason"]
    h2 = app.last_release("h2")
    assert h2["outcome"] == "failed", h2
    assert "Docker daemon" in h2["reason"] and "putting traffic back on blue" in h2["reason"], h2["reason"]
    # The engine is back: the same command converges.
    assert host_docker("h2", "info", "--format", "{{.ServerVersion}}").stdout.strip()
    app.play("release.yml", switchyard_version="v2")
    assert app.versions() == {"h1": "v2", "h2": "v2"}
