"""End to end: the release, rollback, contract and status playbooks on the local inventory, against
the testbed's Docker Engine, registry, HAProxy and PostgreSQL, with the demo application.

The tests of this file share one application and run in order: each starts from the state the
previous one left (as an operator's successive commands would).
"""

from __future__ import annotations

import calendar
import collections
import time
from collections.abc import Iterator

import pytest
import requests
from support.load import Load
from support.modules import run_module
from support.release import ReleasedApp
from support.report import archive_text, chart_bands, load, report_files, screenshot

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    # Reports only where a test reads them (each costs ~2 s): the canary release, the failed canary, a rollback
    # and a contract below turn them on for their run.
    released = ReleasedApp(tmp_path_factory.mktemp("release"), reports=False)
    try:
        yield released
    finally:
        released.down()


def traffic(app: ReleasedApp, seconds: float, rate: float = 100) -> Load:
    return Load(app.url + "/", rate=rate, seconds=seconds).start()


def utc_epoch(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def colors(app: ReleasedApp, count: int = 40) -> collections.Counter:
    seen: collections.Counter = collections.Counter()
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(app.url + "/", timeout=5)
            seen[resp.json()["color"] if resp.status_code == 200 else f"HTTP {resp.status_code}"] += 1
    return seen


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"switchyard_canary_steps": [50, 10]}, "switchyard_canary_steps"),
        ({"switchyard_stop_after_step": 30}, "switchyard_stop_after_step"),
        ({"switchyard_gate_hold_policy": "sometimes"}, "switchyard_gate_hold_policy"),
        # Rendered into haproxy.cfg's `acl ... src`: a second token would trust everyone.
        (
            {"switchyard_canary_trusted_sources": ["10.0.0.0/8 always_true"]},
            "switchyard_canary_trusted_sources[0]='10.0.0.0/8 always_true' is not a CIDR",
        ),
        (
            {"switchyard_secrets": [{"name": "db_password", "owner": 0, "group": 10001, "mode": "0644"}]},
            "switchyard_secrets[0].mode='0644' (db_password)",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_changes(app, extra, named) -> None:
    result = app.play("release.yml", ok=False, switchyard_version="v1", **extra)
    assert named in result.stdout, result.stdout[-3000:]
    assert not (app.state / "ledger.json").exists() and not (app.state / "release.lock").exists()
    assert not app.containers("blue") and not app.containers("lb")


def test_check_mode_of_a_first_release_changes_nothing(app) -> None:
    result = app.play("release.yml", "--check", switchyard_version="v1")
    assert "First release of" in result.stdout
    # Every migration file would run, by name: the expand files first, then the backfills.
    pending = "0001_create_items/expand.sql, 0002_display_name/expand.sql, 0002_display_name/backfill.yml"
    assert f'"migrations pending: {pending}"' in result.stdout, result.stdout[-3000:]
    assert not (app.state / "ledger.json").exists()
    assert not app.containers("blue") and not app.containers("lb")


def test_first_release_goes_to_blue_at_100_percent(app) -> None:
    app.state.mkdir(parents=True, exist_ok=True)
    app.state.chmod(0o755)  # as older versions left it: the release tightens it
    app.play("release.yml", switchyard_version="v1")
    assert oct(app.state.stat().st_mode & 0o777) == "0o700"
    assert app.answer()["version"] == "v1" and app.answer()["color"] == "blue"
    ledger = app.ledger()
    assert ledger["live"] == "blue" and ledger["previous"] is None
    assert ledger["colors"]["blue"]["images"]["api"].startswith("127.0.0.1:5000/switchyard/demo-app@sha256:")
    release = app.last_release()
    assert release["outcome"] == "promoted" and not release["verdicts"]  # no canary on a first release
    assert app.weights() == {"blue": 256, "green": 0}
    assert app.lock() is None
    secret = app.state / "secrets" / "db_password"
    assert oct(secret.stat().st_mode & 0o777) == "0o440"


def test_releasing_the_live_version_again_changes_nothing(app) -> None:
    before = app.ledger()
    result = app.play("release.yml", switchyard_version="v1")
    assert "nothing to release" in result.stdout
    assert "changed=0" in result.stdout
    assert app.ledger() == before


def test_check_mode_shows_the_plan_and_changes_nothing(app, testbed) -> None:
    ledger = (app.state / "ledger.json").read_bytes()
    weights = app.weights()
    result = app.play("release.yml", "--check", switchyard_version="v2")
    assert '"candidate": "green"' in result.stdout and '"weights_per_step"' in result.stdout
    assert '"blue": 230' in result.stdout and '"green": 26' in result.stdout  # the 10 % step
    # The plan as check mode resolved it: the steps in numeric order (not 10, 100, 50), the tag as its digest.
    assert '"steps: 10 % (blue 230, green 26) -> 50 % (blue 128, green 128) -> 100 % (blue 0, green 256)"' in (
        result.stdout
    ), result.stdout[-3000:]
    digest = testbed.pinned("demo-app:v2").split("@")[1]
    assert f'"image api: {testbed.image("demo-app:v2")} -> {digest}"' in result.stdout
    assert '"migrations pending: ' in result.stdout
    assert (app.state / "ledger.json").read_bytes() == ledger
    assert app.weights() == weights
    assert not app.containers("green")


def test_canary_release_promotes_v2_under_load_without_errors(app) -> None:
    load = traffic(app, seconds=90)
    app.play("release.yml", switchyard_version="v2", switchyard_report_enabled=True)
    assert colors(app) == {"green": 40}
    release = app.last_release()
    assert release["outcome"] == "promoted", release
    assert [v["step"] for v in release["verdicts"]] == ["canary-10", "canary-50"]
    assert all(v["verdict"] == "promote" for v in release["verdicts"]), release["verdicts"]
    ledger = app.ledger()
    assert (ledger["live"], ledger["previous"]) == ("green", "blue")
    assert app.containers("blue"), "the previous color must stay running for the rollback window"
    assert app.servers()["api_blue"]["state"] == "drain"
    load.stop()
    errors = [s for s in load.answers if s != 200]
    assert not errors, f"{len(errors)} failed requests of {len(load.answers)} during the release"


def test_the_canary_release_leaves_a_report_matching_the_gate_and_the_ledger(app, tmp_path) -> None:
    """The release above: its report (host and controller) has the ledger's steps and the gate's numbers, its
    page renders in headless Chromium with drawn charts, and no secret is in the report or its archive."""
    release = app.last_release()
    files = report_files(app.state, app.reports, release["id"])
    report = load(files)
    assert files["host_json"].read_text() == files["json"].read_text()
    assert files["host_html"].read_bytes() == files["html"].read_bytes()
    assert report["release"]["id"] == release["id"] and report["release"]["outcome"] == "promoted"
    assert [s["name"] for s in report["steps"]] == [s["name"] for s in release["steps"]]
    steps = {s["name"]: s for s in report["steps"]}
    for verdict in release["verdicts"]:
        step = steps[verdict["step"]]
        assert step["gate"]["verdict"] == verdict["verdict"] and step["gate"]["metrics"] == verdict["metrics"]
        error_rate = {m["metric"]: m for m in verdict["metrics"]}["error_rate"]
        # Each color's figures are the gate's own (its LB log sample and the containers' figures), and the
        # error rate was judged on the real or on the synthetic part of that sample (like for like).
        green, blue = step["colors"]["green"], step["colors"]["blue"]
        assert green["source"] == blue["source"] == "gate", (green, blue)
        figures = verdict["figures"]
        assert (figures["canary"]["name"], figures["baseline"]["name"]) == ("green", "blue")
        assert (green["requests"], blue["requests"]) == (figures["canary"]["requests"], figures["baseline"]["requests"])
        sample = {"real": "real_requests", "synthetic": "synthetic_requests"}[error_rate["sample"]]
        assert (green[sample], blue[sample]) == (error_rate["canary_n"], error_rate["baseline_n"]), (green, error_rate)
        assert green["synthetic_sent"] > 0 and green["cpu_seconds"] is not None and green["restarts"] == 0, green
    assert report["failure"] is None
    before, after = report["before_after"]["before"], report["before_after"]["after"]
    assert before["color"] == "blue" and before["figures"]["requests"] > 0
    assert after["color"] == "green" and after["seconds"] >= 0
    assert report["images"][0]["image"] == release["images"]["api"]
    assert report["images"][0]["digest"].startswith("sha256:")
    bands = chart_bands(screenshot(files["html"], tmp_path / "page.png"))
    assert len(bands["blue"]) >= 3 and len(bands["green"]) >= 3, bands
    archived = archive_text(files["archive"])
    assert any(name.endswith("lb/haproxy.cfg") for name in archived), sorted(archived)
    assert any(name.endswith("green/color.override.yaml") for name in archived), sorted(archived)
    password = (app.state / "secrets" / "db_password").read_text().strip()
    for text in [files["json"].read_text(), files["html"].read_text(), *archived.values()]:
        assert password not in text


def test_contract_is_refused_inside_the_rollback_window(app) -> None:
    result = app.play("contract.yml", ok=False, switchyard_rollback_window=3600)
    assert "rollback window" in result.stdout and "switchyard_rollback_window=3600" in result.stdout
    assert app.containers("blue")


def test_rollback_is_one_command_and_the_demo_answers_v1(app) -> None:
    started = time.monotonic()
    app.play("rollback.yml", switchyard_report_enabled=True)
    took = time.monotonic() - started
    assert colors(app) == {"blue": 40}
    assert app.answer()["version"] == "v1"
    ledger = app.ledger()
    assert (ledger["live"], ledger["previous"]) == ("blue", "green")
    assert app.servers()["api_green"]["state"] == "maint"
    rollback = app.last_release("rollback")
    assert rollback["outcome"] == "done"
    assert load(report_files(app.state, app.reports, rollback["id"]))["release"]["kind"] == "rollback"
    print(f"rollback.yml took {took:.1f} s (with its report)")


def test_rollback_is_refused_while_another_run_holds_the_lock_unless_forced(app) -> None:
    """Another run (a cancelled AWX job, say) holds a valid lock: rollback.yml names it and stops;
    switchyard_force_lock takes the lock over, records it, and rolls back to v2."""
    held = run_module(
        "release_state",
        {
            "app": app.app,
            "path": str(app.state),
            "action": "lock",
            "release_id": "cancelled-job-1",
            "owner": "awx@job-41",
            "lock_ttl": 3600,
        },
    )
    assert not held.get("failed"), held
    refused = app.play("rollback.yml", ok=False)
    assert "is held by awx@job-41" in refused.stdout and colors(app) == {"blue": 40}
    app.play("rollback.yml", switchyard_force_lock=True)
    assert colors(app) == {"green": 40}
    ledger = app.ledger()
    assert ledger["live"] == "green" and app.lock() is None
    assert ledger["takeovers"][-1]["previous_release_id"] == "cancelled-job-1" and ledger["takeovers"][-1]["forced"]


def test_contract_after_the_window_retires_the_old_color(app) -> None:
    demoted = app.ledger()["colors"]["blue"]["demoted_at"]
    wait_until = utc_epoch(demoted) + 16
    time.sleep(max(0.0, wait_until - time.time()))
    app.play("contract.yml", switchyard_report_enabled=True)
    assert not app.containers("blue")
    contract = app.last_release("contract")
    assert load(report_files(app.state, app.reports, contract["id"]))["release"]["kind"] == "contract"
    ledger = app.ledger()
    assert ledger["colors"]["blue"]["state"] == "retired" and ledger["previous"] is None
    assert ledger["migrations"]["contracted"], ledger["migrations"]
    assert colors(app) == {"green": 40}
    refused = app.play("rollback.yml", ok=False)
    assert "Nothing to roll back" in refused.stdout or "retired" in refused.stdout


def test_a_failing_canary_rolls_back_automatically(app) -> None:
    load = traffic(app, seconds=60)
    result = app.play(
        "release.yml",
        ok=False,
        switchyard_version="v3",
        switchyard_candidate_env={"FAIL_RATE": "0.3"},
        switchyard_report_enabled=True,
    )
    assert "canary gate at 10 % says rollback" in result.stdout, result.stdout[-3000:]
    assert "Traffic is back on green" in result.stdout
    assert colors(app) == {"green": 40}
    servers = app.servers()
    assert servers["api_blue"]["state"] == "maint" and servers["api_blue"]["weight"] == 0
    release = app.last_release()
    assert release["outcome"] == "rolled_back" and release["verdicts"][-1]["verdict"] == "rollback"
    assert app.lock() is None
    load.stop()


def test_the_failed_canary_release_report_names_the_failing_metric(app) -> None:
    release = app.last_release()
    report = load(report_files(app.state, app.reports, release["id"]))
    assert report["release"]["outcome"] == "rolled_back"
    assert report["failure"]["step"] == "canary-10"
    not_passed = release["verdicts"][-1]["routes"][0]["not_passed"]
    assert report["failure"]["metric_names"] == sorted(not_passed) and "error_rate" in not_passed
    html = (app.reports / f"{release['id']}.html").read_text()
    assert 'id="failure"' in html and 'class="chart failing-metric" id="chart-error_rate"' in html


def test_a_candidate_that_never_gets_healthy_never_receives_traffic(app) -> None:
    load = traffic(app, seconds=45, rate=50)
    app.play("release.yml", ok=False, switchyard_version="v3", switchyard_candidate_env={"UNHEALTHY": "1"})
    load.stop()
    assert not [s for s in load.answers if s != 200]
    assert colors(app) == {"green": 40}
    assert app.servers()["api_blue"]["state"] == "maint"
    release = app.last_release()
    assert release["outcome"] == "rolled_back" and "canary-10" not in [s["name"] for s in release["steps"]]


def test_a_second_concurrent_release_is_refused_by_the_lock(app) -> None:
    first = app.start("release.yml", switchyard_version="v3", switchyard_gate_enabled=False)
    try:
        deadline = time.monotonic() + 60
        while app.lock() is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first release never took the lock"
            time.sleep(0.2)
        holder = app.lock()
        second = app.play("release.yml", ok=False, switchyard_version="v3")
        assert "is held by" in second.stdout and holder["release_id"] in second.stdout
    finally:
        out, _err = first.communicate(timeout=300)
    assert first.returncode == 0, out[-4000:]
    assert app.ledger()["live"] == "blue" and app.answer()["version"] == "v3"


def test_a_killed_release_is_taken_over_after_its_lock_expires(app) -> None:
    load = traffic(app, seconds=150)
    killed = app.start("release.yml", switchyard_version="v2", switchyard_canary_window=10, switchyard_lock_ttl=20)
    deadline = time.monotonic() + 120
    while not (
        (app.lock() or {}).get("release_id") == app.last_release()["id"]
        and any(s["name"] == "canary-10" for s in app.last_release()["steps"])
    ):
        assert killed.poll() is None and time.monotonic() < deadline, killed.stdout.read()[-3000:]
        time.sleep(0.3)
    app.kill(killed)
    lock = app.lock()
    assert lock is not None, "SIGKILL cannot release the lock: it must still be there"
    refused = app.play("release.yml", ok=False, switchyard_version="v2")
    assert "is held by" in refused.stdout
    # The module the kill orphaned (the gate's window) may still renew the lock until it ends: the
    # lock expires switchyard_lock_ttl after the last sign of life of the killed run.
    deadline = time.monotonic() + 180
    while (app.lock() or {}).get("expires_at") and utc_epoch(app.lock()["expires_at"]) > time.time() - 1:
        assert time.monotonic() < deadline, f"the killed run's lock never expired: {app.lock()}"
        time.sleep(1)
    app.play("release.yml", switchyard_version="v2")
    ledger = app.ledger()
    assert ledger["live"] == "green" and app.answer()["version"] == "v2"
    assert ledger["takeovers"] and ledger["takeovers"][-1]["previous_release_id"] == lock["release_id"]
    abandoned = [r for r in ledger["releases"] if r["id"] == lock["release_id"]][0]
    assert abandoned["outcome"] == "abandoned"
    load.stop()
    assert not [s for s in load.answers if s != 200]


def test_a_release_stopped_after_a_step_waits_and_resumes(app) -> None:
    load = traffic(app, seconds=120)
    paused = app.play("release.yml", switchyard_version="v3", switchyard_stop_after_step=10)
    assert "paused with 10 %" in paused.stdout
    assert app.weights() == {"green": 230, "blue": 26}
    # Blue is the candidate (v3), green live: the canary header (from the Docker host, trusted) reaches blue.
    with requests.Session() as session:
        answers = [session.get(app.url + "/", headers={"X-Canary": "1"}, timeout=5) for _request in range(10)]
    assert [(a.json()["version"], a.headers.get("X-Switchyard-Server")) for a in answers] == [("v3", "api_blue")] * 10
    assert app.lock() is None
    other = app.play("release.yml", ok=False, switchyard_version="v1")
    assert "is paused after the 10 % step" in other.stdout
    app.play("release.yml", switchyard_version="v3")
    release = app.last_release()
    assert release["outcome"] == "promoted"
    assert [v["step"] for v in release["verdicts"]] == ["canary-10", "canary-50"]
    assert app.ledger()["live"] == "blue" and app.answer()["version"] == "v3"
    load.stop()
    assert not [s for s in load.answers if s != 200]


def test_rollback_of_a_paused_release_returns_everything_to_the_live_color(app) -> None:
    load = traffic(app, seconds=60)
    app.play("release.yml", switchyard_version="v2", switchyard_stop_after_step=10)
    assert app.weights() == {"blue": 230, "green": 26}
    paused_id = app.last_release()["id"]
    app.play("rollback.yml")
    assert app.weights() == {"blue": 256, "green": 0}
    assert app.servers()["api_green"]["state"] == "maint"
    assert colors(app) == {"blue": 40}
    ledger = app.ledger()
    assert ledger["live"] == "blue"
    assert [r for r in ledger["releases"] if r["id"] == paused_id][0]["outcome"] == "abandoned"
    assert app.last_release("rollback")["outcome"] == "done" and app.lock() is None
    load.stop()


def test_status_reports_the_ledger_traffic_and_containers(app) -> None:
    ledger = app.ledger()
    live = ledger["colors"]["blue"]
    digest = live["images"]["api"].split("@")[1][:19]  # sha256: and 12 hex digits
    result = app.play("status.yml")
    # First, what runs where: the live color, its version, digest and weight on the LB, healthy containers.
    summary = result.stdout[result.stdout.index("TASK [Show what runs where]") :]
    assert f'"{app.app}: live blue {live["version"]}, previous ' in summary, summary[:3000]
    assert f'"  blue: live {live["version"]} (api {digest}) - weight 256, UP' in summary, summary[:3000]
    assert "containers 1/1 running, 1 healthy" in summary and '"lock: free"' in summary
    assert f'"  {ledger["releases"][-1]["id"]}  ' in summary  # the last release first
    pages = sorted(app.state.glob("reports/*.html"), key=lambda p: p.stat().st_mtime)
    assert (f'"report: {pages[-1]}' if pages else '"report: no report yet"') in summary, summary[:3000]
    # The ledger's JSON only at -v.
    assert '"live": "blue"' not in result.stdout and '"releases"' not in result.stdout
    verbose = app.play("status.yml", "-v")
    assert '"live": "blue"' in verbose.stdout
    assert f"{app.app}-blue-api-1" in verbose.stdout and "healthy" in verbose.stdout
