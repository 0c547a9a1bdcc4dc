"""switchyard.release.preflight on this machine's real Docker Engine and Compose plugin."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from support.modules import run_module

pytestmark = pytest.mark.testbed


def names(result: dict, status: str) -> list[str]:
    return [c["name"] for c in result["checks"] if c["status"] == status]


def test_the_testbed_host_passes_and_reports_what_it_measured(testbed, tmp_path: Path) -> None:
    result = run_module(
        "preflight", {"controller_time": time.time(), "lb": {"dir": str(tmp_path / "lb")}, "routes": ["api"]}
    )
    assert not result.get("failed"), result
    assert names(result, "pass") == ["docker", "compose", "free_space", "clock"]
    assert names(result, "skip") == ["lb"] and result["changed"] is False
    facts = result["facts"]
    assert facts["docker_root"] and facts["free_bytes"] > 0 and abs(facts["clock_skew_s"]) < 5
    assert facts["compose_version"].startswith("2.")


@pytest.mark.parametrize(
    ("args", "failed"),
    [
        ({"min_free_gb": 10**7}, "free_space"),  # more than any disk of this machine
        ({"min_compose_version": "99.0"}, "compose"),
        ({"controller_time": 0}, "clock"),  # a controller at 1970: the real clock is far from it
    ],
)
def test_a_limit_the_host_does_not_meet_fails_naming_the_check(testbed, args: dict, failed: str) -> None:
    result = run_module("preflight", {"controller_time": time.time(), **args}, check=True)
    assert result["failed"] and f"{failed}: " in result["msg"], result["msg"]
    assert names(result, "fail") == [failed]


def test_an_lb_socket_nobody_listens_on_fails_the_lb_check(testbed, tmp_path: Path) -> None:
    run = tmp_path / "lb" / "run"
    run.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(run / "admin.sock"))  # the file exists, nothing accepts: what a dead HAProxy leaves
    dead.close()
    result = run_module("preflight", {"lb": {"dir": str(tmp_path / "lb")}, "routes": ["api"]})
    assert result["failed"] and "lb: the LB does not answer" in result["msg"], result["msg"]
