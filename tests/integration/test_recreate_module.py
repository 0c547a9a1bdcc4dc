"""The recreate module against a real HAProxy and Compose project: blue recreated in place from staged files behind
the maintenance page. Check mode changes nothing; a staged file missing is refused before the page goes on; a new
version that crashes leaves the old one stopped and the page up (touched); a good one ends with the page off over it,
the outage measured; with resume=false the page stays on for the caller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.compose import docker, unique_name
from support.modules import run_module
from support.stack import Stack
from support.testbed import Testbed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    built = Stack(testbed, tmp_path_factory.mktemp("recreate"), unique_name("rcm"))
    try:
        yield built.up()
    finally:
        built.down()


def ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def answer(stack: Stack) -> requests.Response:
    return requests.get(stack.url + "/", timeout=5)


def blue_ids(stack: Stack) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.app}-blue").stdout.split()


class Recreate:
    """blue's files as deployed (v1), the staging directory beside them, and the module's arguments."""

    def __init__(self, stack: Stack, state: Path) -> None:
        self.stack = stack
        self.live = stack.color_args("blue", "v1")  # the files blue runs from (rewritten as they are)
        self.staged = stack.workdir / "blue.staged"
        self.staged.mkdir(exist_ok=True)
        # What the files say before any recreate (a recreate moves the staged ones over them).
        self.original = {Path(p).name: Path(p).read_text() for p in self.live["files"] + self.live["env_files"]}
        lb = {"kind": "haproxy", "dir": str(stack.lb_dir), "container": stack.lb_container}
        self.common = {"app": stack.app, "path": str(state), "lb": lb, "routes": ["api"]}

    def stage(self, **env: str) -> None:
        for name, text in self.original.items():
            (self.staged / name).write_text(text)
        env_file = self.staged / Path(self.live["env_files"][0]).name
        env_file.write_text(env_file.read_text() + "".join(f"{k}={v}\n" for k, v in env.items()))

    def args(self, version: str, **extra) -> dict:
        return {
            **self.common,
            "project": self.live["project"],
            "files": self.live["files"],
            "env_files": self.live["env_files"],
            "images": {"api": self.stack.testbed.image(f"demo-app:{version}")},
            "staged_dir": str(self.staged),
            "color": "blue",
            "wait_timeout": 60,
            "up_timeout": 30,
            "maintenance": {"probe_urls": [self.stack.url + "/"], "probe_timeout": 10},
            **extra,
        }


def test_blue_recreated_behind_the_page(stack: Stack, tmp_path: Path) -> None:
    recreate = Recreate(stack, tmp_path)
    ok(run_module("traffic", {**recreate.common, "weights": {"blue": 256, "green": 0}}))
    assert answer(stack).json()["version"] == "v1"
    running = blue_ids(stack)

    recreate.stage()
    checked = ok(run_module("recreate", recreate.args("v2"), check=True))
    assert checked["changed"] and checked["page"] == "off" and checked["touched"] is False, checked
    assert answer(stack).json()["version"] == "v1" and blue_ids(stack) == running
    assert sorted(p.name for p in recreate.staged.iterdir()) == ["blue.env", "compose.base.yaml"]

    # A staged file missing: refused before the page goes on - nothing touched.
    (recreate.staged / "blue.env").unlink()
    refused = run_module("recreate", recreate.args("v2"))
    assert refused.get("failed") and "staged_dir:" in refused["msg"] and "blue.env" in refused["msg"], refused
    assert (refused["touched"], refused["page"]) == (False, "off") and "page_on" not in refused
    served = answer(stack)
    assert served.status_code == 200 and served.json()["version"] == "v1" and blue_ids(stack) == running

    # A new version that crashes: the old one is stopped, the page stays up.
    recreate.stage(DEMO_CRASH_ON_START="1")
    crashed = run_module("recreate", recreate.args("v2", wait_timeout=15))
    assert crashed.get("failed") and (crashed["touched"], crashed["page"]) == (True, "on"), crashed
    assert crashed["page_on"]["verified_at"] > 0 and "page_off" not in crashed
    paged = answer(stack)
    assert paged.status_code == 503 and paged.headers["X-Switchyard-Maintenance"] == "on"

    # A good version: up and healthy, the page off over it once the LB sees blue UP.
    recreate.stage()
    done = ok(run_module("recreate", recreate.args("v2")))
    assert done["changed"] and (done["touched"], done["page"]) == (True, "resumed"), done
    assert done["outage_ms"] > done["ready_s"] * 1000 > 0 and done["page_off"]["waited_up_s"] >= 0
    served = answer(stack)
    assert served.json()["version"] == "v2" and "X-Switchyard-Maintenance" not in served.headers
    assert list(recreate.staged.iterdir()) == [], "the staged files were put in place"

    # resume=false: the page stays on for the caller (backfills), which turns it off with traffic.
    recreate.stage()
    held = ok(run_module("recreate", recreate.args("v1", resume=False)))
    assert (held["page"], held["stopped_s"] > 0) == ("on", True) and "outage_ms" not in held, held
    assert answer(stack).status_code == 503
    since = held["page_on"]["verified_at"]
    off = {"enabled": False, "wait_up": "blue", "probe_urls": [stack.url + "/"], "since": since}
    resumed = ok(run_module("traffic", {**recreate.common, "up_timeout": 30, "maintenance": off}))
    assert resumed["maintenance"]["outage_ms"] > held["ready_s"] * 1000
    assert answer(stack).json()["version"] == "v1"
