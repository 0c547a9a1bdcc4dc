"""End to end: `make demo` (examples/app/demo.sh) deploys the demo, and a second run changes nothing."""

from __future__ import annotations

import os
import subprocess

import requests
from conftest import DEMO_DIR
from support.compose import docker, free_port, unique_name


def demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(DEMO_DIR / "demo.sh"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, f"demo.sh {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def test_demo_up_is_idempotent_and_down_cleans_up(testbed, tmp_path) -> None:
    app = unique_name("demo")
    port = free_port()
    env = {"DEMO_APP": app, "DEMO_PORT": str(port), "DEMO_STATE_DIR": str(tmp_path / "state")}
    try:
        demo("up", env=env)
        root = requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        assert root["version"] == "v1" and root["color"] == "blue"
        secret = tmp_path / "state" / "secrets" / "db_password"
        assert oct(secret.stat().st_mode & 0o777) == "0o440"
        assert (tmp_path / "state" / "secrets").stat().st_mode & 0o077 == 0

        first = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={app}-blue").stdout.split()
        second_run = demo("up", env=env)
        again = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={app}-blue").stdout.split()
        assert first and again == first, "a second `make demo` replaced the running container"
        assert "applying migrations" not in second_run.stderr
    finally:
        demo("down", env=env)
    assert not docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={app}-blue").stdout.strip()
    assert docker("network", "inspect", f"{app}_edge", check=False).returncode != 0
    docker("volume", "rm", "--force", f"{app}-data_pgdata")
