"""One application released with the collection's playbooks on the local inventory, under a
test name, port and state directory, with short canary windows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from support.compose import docker, free_port, remove_network, unique_name
from support.modules import run_module
from support.testbed import REPO_ROOT

INVENTORY = REPO_ROOT / "inventories" / "local"
PLAYBOOK_DIR = REPO_ROOT / "playbooks"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

# Short windows and small samples: the tests send 100 requests/s, 10 % of which is 30 per window.
TEST_SETTINGS = {
    "switchyard_canary_steps": [10, 50, 100],
    "switchyard_canary_window": 3,
    # make test runs two test files at a time on 2 cores: a candidate started just now answers tens of ms slower
    # than a warm baseline there. The latency comparison keeps a wide tolerance; the gate's latency verdicts are
    # tested with injected latencies far beyond it (tests/integration/test_canary_gate.py).
    "switchyard_gate": {
        "min_requests": 15,
        "min_samples": 15,
        "max_error_rate": 0.05,
        "max_p95_ms": 800,
        "latency_tolerance_ms": 50,
    },
    "switchyard_gate_hold_retries": 2,
    "switchyard_rollback_window": 15,
    "switchyard_health_timeout": 60,
    "switchyard_compose_env": {"DEMO_HEALTH_START_PERIOD": "5s"},
}


class PlaybookRunner:
    """Runs the collection's playbooks for a test: its inventories, extra vars, flags and environment; keeps what every
    run printed. A subclass gives inventories() and sets extra (and may set flags, environment, play_timeout)."""

    play_timeout = 600
    extra: dict
    flags: list[str]
    environment: dict[str, str]
    outputs: list[str]

    def inventories(self) -> list[str]:
        raise NotImplementedError

    def command(self, playbook: str, extra: dict, *flags: str) -> list[str]:
        return [
            ANSIBLE_PLAYBOOK,
            *self.inventories(),
            str(PLAYBOOK_DIR / playbook),
            "-e",
            json.dumps({**self.extra, **extra}),
            *self.flags,
            *flags,
        ]

    def env(self) -> dict:
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            **self.environment,
        }

    def play(self, playbook: str, *flags: str, ok: bool | None = True, **extra) -> subprocess.CompletedProcess:
        """Run a playbook; ok=True asserts success, ok=False asserts failure, None asserts nothing."""
        result = subprocess.run(
            self.command(playbook, extra, *flags),
            capture_output=True,
            text=True,
            timeout=self.play_timeout,
            env=self.env(),
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        if ok is not None:
            assert (result.returncode == 0) == ok, (
                f"{playbook} {extra} {flags}: rc={result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def start(self, playbook: str, *flags: str, **extra) -> subprocess.Popen:
        """A playbook in the background, in its own process group (so a test can SIGKILL all of it)."""
        return subprocess.Popen(
            self.command(playbook, extra, *flags),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env(),
            start_new_session=True,
        )


class ReleasedApp(PlaybookRunner):
    def __init__(self, workdir: Path, kind: str = "rel", reports: bool = True, lb: str = "haproxy") -> None:
        self.app = unique_name(kind)
        self.lb_kind = lb
        self.port = free_port()
        self.state = workdir / "state"
        self.inventory = INVENTORY
        self.workdir = workdir
        self.reports = workdir / "reports"
        # Variables set in the inventory rather than as extra vars (the verification policy is refused as an
        # extra var): written to a second inventory source next to the state directory.
        self.inventory_vars: dict = {}
        # Flags added to every playbook run (-vvv --diff for the leak test), environment added to
        # ansible-playbook's, and what every run printed (stdout, stderr).
        self.flags: list[str] = []
        self.environment: dict[str, str] = {}
        self.outputs: list[str] = []
        self.extra = {
            **TEST_SETTINGS,
            "switchyard_app": self.app,
            "switchyard_lb_public_port": self.port,
            "switchyard_state_dir": str(self.state),
            # The reports' controller copies (the default is under the directory ansible-playbook runs in).
            "switchyard_report_dir": str(workdir / "reports"),
            # The report costs ~2 s a run: suites about something else may turn it off (test_release.py,
            # the AWX, SSH, demo and under-load runs keep it, and check it).
            "switchyard_report_enabled": reports,
            # The image comes from the inventory's switchyard_lb_images.
            "switchyard_lb_kind": lb,
            "switchyard_compose_env": {
                **TEST_SETTINGS["switchyard_compose_env"],
                "DEMO_SECRETS_DIR": str(self.state / "secrets"),
            },
        }

    url = property(lambda self: f"http://127.0.0.1:{self.port}")

    @property
    def socket(self) -> str:
        """The LB's admin socket (under the state directory unless switchyard_lb_dir says otherwise)."""
        lb_dir = self.extra.get("switchyard_lb_dir") or str(self.state / "lb")
        return str(Path(lb_dir) / "run" / "admin.sock")

    # -- running playbooks ----------------------------------------------------------------------
    def inventories(self) -> list[str]:
        sources = ["-i", str(self.inventory)]
        if self.inventory_vars:
            path = self.workdir / "inventory-vars.yml"
            # Host vars of an inventory source outrank the local inventory's group_vars/ files.
            path.write_text(json.dumps({"docker_hosts": {"hosts": {"localhost": self.inventory_vars}}}))
            sources += ["-i", str(path)]
        return sources

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    # -- observing ------------------------------------------------------------------------------
    def ledger(self) -> dict:
        path = self.state / "ledger.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def lock(self) -> dict | None:
        path = self.state / "release.lock"
        return json.loads(path.read_text()) if path.exists() else None

    def last_release(self, kind: str = "release") -> dict:
        return [r for r in self.ledger().get("releases", []) if r["kind"] == kind][-1]

    def servers(self) -> dict:
        result = run_module("haproxy_weight", {"socket": self.socket, "backend": "be_api"})
        assert not result.get("failed"), result.get("msg")
        return result["after"]

    def lb_servers(self) -> dict:
        """{color: {weight, state, up, status, sessions}} of route api, as the traffic module reads any LB kind."""
        lb_dir = self.extra.get("switchyard_lb_dir") or str(self.state / "lb")
        lb = {"kind": self.lb_kind, "dir": lb_dir, "container": f"{self.app}-lb-{self.lb_kind}-1"}
        result = run_module("traffic", {"app": self.app, "path": str(self.state), "lb": lb, "routes": ["api"]})
        assert not result.get("failed"), result.get("msg")
        return result["servers"]["api"]

    def weights(self) -> dict:
        return {color: server["weight"] for color, server in self.lb_servers().items()}

    def answer(self) -> dict:
        return requests.get(self.url + "/", timeout=5).json()

    def containers(self, color: str) -> list[str]:
        """The running containers of a project (a color, lb or data)."""
        return docker("ps", "-q", "--filter", f"label=com.docker.compose.project={self.app}-{color}").stdout.split()

    def containers_all(self, color: str) -> list[str]:
        """Every container of a project, whatever its state (created, running, exited)."""
        return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.app}-{color}").stdout.split()

    def down(self) -> None:
        for project in ("blue", "green", "lb", "data"):
            docker("compose", "-p", f"{self.app}-{project}", "down", "--volumes", "--timeout", "5", check=False)
        for net in ("public", "edge", "data"):
            remove_network(f"{self.app}_{net}")
