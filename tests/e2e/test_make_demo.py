"""End to end: `make demo` (examples/app/demo.sh) releases the demo with the collection's playbooks -
v1 first, then v2 through canary steps judged by the gate under steady traffic - and prints the
status; a second run finds v2 live and changes nothing; `demo.sh down` cleans up."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests
from conftest import DEMO_DIR
from support.compose import docker, free_port, unique_name

pytestmark = pytest.mark.timeout(900)


def demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(DEMO_DIR / "demo.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, f"demo.sh {' '.join(args)}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def test_make_demo_runs_a_real_canary_release(testbed, tmp_path) -> None:
    app = unique_name("demo")
    port = free_port()
    state = tmp_path / "state"
    env = {"DEMO_APP": app, "DEMO_PORT": str(port), "DEMO_STATE_DIR": str(state)}
    try:
        first = demo("up", env=env)
        root = requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        assert root["version"] == "v2" and root["color"] == "green"
        ledger = json.loads((state / "ledger.json").read_text())
        releases = [r for r in ledger["releases"] if r["kind"] == "release"]
        assert [(r["version"], r["outcome"]) for r in releases] == [("v1", "promoted"), ("v2", "promoted")]
        assert [v["verdict"] for v in releases[-1]["verdicts"]] == ["promote"] * 3  # 10, 25 and 50 %
        assert f'"{app}: live green v2, previous blue"' in first.stdout  # the status
        assert "traffic:" in first.stdout  # the traffic generator's summary

        green = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={app}-green").stdout.split()
        again = demo("up", env=env)
        assert "nothing to release" in again.stdout
        assert docker("ps", "-q", "--filter", f"label=com.docker.compose.project={app}-green").stdout.split() == green
    finally:
        demo("down", env=env)
    assert not docker("ps", "-aq", "--filter", f"label=io.switchyard.app={app}").stdout.strip()
    assert docker("network", "inspect", f"{app}_edge", check=False).returncode != 0
    assert not (state / "ledger.json").exists() and (state / "secrets" / "db_password").exists()
    docker("volume", "rm", "--force", f"{app}-data_pgdata")
