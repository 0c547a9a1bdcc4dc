"""End to end, for each LB kind besides HAProxy (Nginx, Traefik): `SWITCHYARD_LB_KIND=<kind> make demo` releases v1,
then v2 through canary steps judged by the gate under steady traffic; then, with the same playbooks and
`switchyard_lb_kind` as the inventory variable, a rollback under load, a canary that the gate rolls back, and a
contract that retires the idle color. The ledger, the gate's verdicts and the report are the same as with HAProxy.
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
def test_release_rollback_failed_canary_and_contract_behind(kind, testbed, tmp_path) -> None:
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
    finally:
        app.down()
