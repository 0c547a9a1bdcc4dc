"""End to end, for each LB kind besides HAProxy (Nginx, Traefik): `SWITCHYARD_LB_KIND=<kind> make demo` releases v1,
then v2 through canary steps judged by the gate under steady traffic; then, with the same playbooks and
`switchyard_lb_kind` as the inventory variable, a rollback under load, a canary that the gate rolls back, and a
contract that retires the idle color; then the other strategies under load (bluegreen on Nginx, ab on Traefik, and
recreate on both). The ledger, the gate's verdicts and the report are the same as with HAProxy.
"""

from __future__ import annotations

import calendar
import collections
import json
import os
import subprocess
import time

import pytest
import requests
from conftest import DEMO_DIR
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp
from support.report import archive_text, load, report_files

pytestmark = pytest.mark.timeout(900)


def demo(app: ReleasedApp, kind: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEMO_APP": app.app,
        "DEMO_PORT": str(app.port),
        "DEMO_STATE_DIR": str(app.state),
        "SWITCHYARD_LB_KIND": kind,
        # The tests' short windows and small samples (the demo's own are 8 s windows over four steps).
        "DEMO_EXTRA_VARS": json.dumps(app.extra),
    }
    result = subprocess.run(
        ["bash", str(DEMO_DIR / "demo.sh"), *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert result.returncode == 0, f"demo.sh {' '.join(args)}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def colors(app: ReleasedApp, count: int = 30) -> collections.Counter:
    seen: collections.Counter = collections.Counter()
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(app.url + "/", timeout=5)
            seen[resp.json()["color"] if resp.status_code == 200 else f"HTTP {resp.status_code}"] += 1
    return seen


def failed(load: Load) -> list[int]:
    load.stop()
    return [s for s in load.answers if s != 200]


@pytest.mark.parametrize("kind", ["nginx", "traefik"])
def test_release_rollback_failed_canary_contract_and_strategies_behind(kind, testbed, tmp_path) -> None:
    app = ReleasedApp(tmp_path, kind=kind[:5], lb=kind)
    try:
        # make demo: v1 on blue, then v2 through 10 and 50 % under the demo's traffic generator.
        shown = demo(app, kind, "up")
        answer = app.answer()
        assert (answer["version"], answer["color"]) == ("v2", "green"), answer
        ledger = app.ledger()
        releases = [r for r in ledger["releases"] if r["kind"] == "release"]
        assert [(r["version"], r["outcome"]) for r in releases] == [("v1", "promoted"), ("v2", "promoted")]
        assert [(v["step"], v["verdict"]) for v in releases[-1]["verdicts"]] == [
            ("canary-10", "promote"),
            ("canary-50", "promote"),
        ]
        summary = next(line for line in shown.stdout.splitlines() if line.startswith("traffic:"))
        assert "HTTP" not in summary and "no answer" not in summary, summary
        assert f'"{app.app}: live green v2, previous blue"' in shown.stdout
        assert docker("ps", "-q", "--filter", f"name=^{app.app}-lb-{kind}-1$").stdout.strip()
        servers = app.lb_servers()
        assert (servers["green"]["weight"], servers["blue"]["weight"]) == (256, 0), servers
        assert servers["blue"]["state"] == "drain" and servers["green"]["up"], servers
        # The gate judged each step on this LB's own request log: real requests of both colors.
        for verdict in releases[-1]["verdicts"]:
            figures = verdict["figures"]
            assert figures["canary"]["requests"] > 0 and figures["baseline"]["requests"] > 0, figures
        files = report_files(app.state, app.reports, releases[-1]["id"])
        steps = {s["name"]: s for s in load(files)["steps"]}
        assert steps["canary-10"]["colors"]["green"]["requests"] > 0, steps["canary-10"]
        # The archive keeps the files that hold this kind's weights.
        archived = archive_text(files["archive"])
        weights_file = {"nginx": "lb/routes.conf", "traefik": "lb/dynamic/route-api.yml"}[kind]
        assert any(name.endswith(weights_file) for name in archived), sorted(archived)

        # rollback.yml under load: back on blue v1 in one command, no request lost.
        traffic = Load(app.url + "/", rate=50, seconds=60).start()
        app.play("rollback.yml")
        assert colors(app) == {"blue": 30} and app.answer()["version"] == "v1"
        assert failed(traffic) == []
        servers = app.lb_servers()
        assert servers["green"]["state"] == "maint" and servers["blue"]["weight"] == 256, servers
        assert app.last_release("rollback")["outcome"] == "done"

        # v2 again, failing (30 % of its answers are 500): the gate rolls it back at the first step.
        traffic = Load(app.url + "/", rate=50, seconds=60).start()
        result = app.play(
            "release.yml", ok=False, switchyard_version="v2", switchyard_candidate_env={"FAIL_RATE": "0.3"}
        )
        assert "canary gate at 10 % says rollback" in result.stdout, result.stdout[-3000:]
        assert "Traffic is back on blue" in result.stdout
        assert colors(app) == {"blue": 30}
        release = app.last_release()
        assert release["outcome"] == "rolled_back" and release["verdicts"][-1]["verdict"] == "rollback"
        assert app.lock() is None
        errors = failed(traffic)
        assert all(s == 500 for s in errors), collections.Counter(errors)  # only the candidate's own answers
        servers = app.lb_servers()
        assert servers["green"]["state"] == "maint" and servers["green"]["weight"] == 0, servers

        # contract.yml once the idle color has been out of traffic for the rollback window: green is retired.
        demoted = app.ledger()["colors"]["green"].get("demoted_at")
        if demoted:
            wait_until = calendar.timegm(time.strptime(demoted, "%Y-%m-%dT%H:%M:%SZ")) + 6
            time.sleep(max(0.0, wait_until - time.time()))
        app.play("contract.yml", switchyard_rollback_window=5)
        assert not app.containers("green")
        ledger = app.ledger()
        assert ledger["colors"]["green"]["state"] == "retired" and ledger["live"] == "blue", ledger["colors"]
        assert colors(app) == {"blue": 30}
        # The LB still starts with the retired color gone (a restart re-reads its configuration).
        docker("restart", f"{app.app}-lb-{kind}-1")
        deadline = time.monotonic() + 30
        while True:
            try:
                if colors(app, 5) == {"blue": 5}:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the LB did not serve blue again after a restart"
            time.sleep(0.5)

        # The other strategies on this kind (test_strategy_bluegreen runs bluegreen on HAProxy and Traefik,
        # test_strategy_ab runs ab on HAProxy and Nginx, test_recreate runs recreate on HAProxy, each with a failure).
        if kind == "nginx":
            bluegreen_under_load(app)
        else:
            ab_under_load(app)
        recreate_under_load(app)
    finally:
        app.down()


def bluegreen_under_load(app: ReleasedApp) -> None:
    """v2 on green in one switch of 100 %, judged once after it; blue kept warm; nobody saw a failure."""
    traffic = Load(app.url + "/", rate=50, seconds=120).start()
    app.play("release.yml", switchyard_version="v2", switchyard_strategy="bluegreen")
    assert colors(app) == {"green": 30} and app.answer()["version"] == "v2"
    release = app.last_release()
    assert release["strategy"] == "bluegreen" and release["outcome"] == "promoted", release
    assert [(v["step"], v["verdict"]) for v in release["verdicts"]] == [("canary-100", "promote")]
    servers = app.lb_servers()
    assert servers["blue"]["weight"] == 0 and servers["blue"]["up"] and app.containers("blue"), servers
    assert failed(traffic) == []


def ab_under_load(app: ReleasedApp) -> None:
    """v2 as variant B for 30 % of users by the sticky cookie, left running with the lock released, then promoted;
    nobody saw a failure."""
    cookie = "SWITCHYARD_VARIANT"
    app.extra["switchyard_lb_sticky_cookie"] = cookie
    traffic = Load(app.url + "/", rate=50, seconds=180).start()
    app.play("release.yml", switchyard_version="v2", switchyard_strategy="ab", switchyard_ab_percent=30)
    release = app.last_release()
    assert release["strategy"] == "ab" and release["outcome"] == "running" and app.lock() is None, release
    assert release["experiment"] == {"share": 30, "key": f"cookie {cookie}"}
    seen = []
    for _user in range(40):
        with requests.Session() as session:
            seen.append({session.get(app.url + "/", timeout=5).json()["color"] for _request in range(5)})
    assert all(len(variants) == 1 for variants in seen), seen  # each user stays on one variant
    on_b = sum(1 for variants in seen if variants == {"green"})
    assert 3 <= on_b <= 24, on_b  # binomial, 12 of 40 expected
    app.play("release.yml", switchyard_version="v2", switchyard_ab_promote=True)
    assert app.last_release()["outcome"] == "promoted" and colors(app) == {"green": 30}
    assert failed(traffic) == []


def recreate_under_load(app: ReleasedApp) -> None:
    """v1 again in place of the live color (green, v2; v1 runs on the expanded schema): v2 stops, the LB answers the
    maintenance page, then v1; no connection error and no other status."""
    load = Load(app.url + "/", rate=50, seconds=120, record=True).start()
    try:
        app.play("release.yml", switchyard_version="v1", switchyard_strategy="recreate")
    finally:
        load.stop()
    seen = collections.Counter(
        "page" if a.maintenance else f"{a.kind} {a.version}" if a.status == 200 else a.kind for a in load.records
    )
    assert set(seen) <= {"ok v2", "ok v1", "page"} and seen["page"] > 0 and seen["ok v1"] > 0, seen
    entry = app.last_release()
    assert (entry["strategy"], entry["outcome"], entry["color"]) == ("recreate", "promoted", "green"), entry
    assert colors(app) == {"green": 30} and app.answer()["version"] == "v1"
