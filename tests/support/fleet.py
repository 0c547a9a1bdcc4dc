"""One application released on the fleet testbed's hosts (tests/testbed/fleet.sh) over SSH, under a test name, port,
database and state directories, with short canary windows.

The hosts are network namespaces with their own Docker engine and sshd (h1 at 10.77.0.11, h2 at .12, h3 at .13); the
database is the testbed's one PostgreSQL (10.77.0.1), where each test gets a database of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import requests

from support.compose import free_port, unique_name
from support.release import TEST_SETTINGS, PlaybookRunner
from support.testbed import REPO_ROOT, TESTBED_DIR

FLEET_DIR = TESTBED_DIR / "fleet"
FLEET_INVENTORY = REPO_ROOT / "inventories" / "fleet"
FLEET_DB = "syfleet-db"
HOSTS = {"h1": "10.77.0.11", "h2": "10.77.0.12", "h3": "10.77.0.13"}


def host_docker(host: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """The docker CLI against one host's engine."""
    number = host.removeprefix("h")
    env = {**os.environ, "DOCKER_HOST": f"unix://{FLEET_DIR}/h{number}/docker.sock"}
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"[{host}] docker {' '.join(args)} rc={result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def fleet_sql(sql: str, database: str = "demo") -> str:
    """A statement in the fleet's PostgreSQL (psql in its container, as the superuser demo)."""
    result = subprocess.run(
        ["docker", "exec", FLEET_DB, "psql", "-U", "demo", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"psql {sql!r}: {result.stderr}"
    return result.stdout.strip()


def host_engine(action: str, host: str) -> None:
    """Stop or start a host's dockerd (its containers keep running: --live-restore)."""
    subprocess.run(
        ["bash", str(REPO_ROOT / "tests" / "testbed" / "testbed.sh"), "fleet-engine", action, host.removeprefix("h")],
        check=True,
        timeout=120,
        capture_output=True,
    )


class FleetApp(PlaybookRunner):
    play_timeout = 900

    def __init__(self, workdir: Path, hosts: tuple[str, ...] = ("h1", "h2"), kind: str = "fleet") -> None:
        self.app = unique_name(kind)
        self.hosts = hosts
        self.port = free_port()
        self.workdir = workdir
        self.database = self.app.replace("-", "_")
        # Variables of one host (the inventory's host vars), e.g. a fault injected in one host's candidate.
        self.host_vars: dict[str, dict] = {h: {} for h in hosts}
        self.outputs: list[str] = []
        self.flags: list[str] = []
        self.environment: dict[str, str] = {}
        # The inventory's switchyard_compose_env (the database's address) stays: an extra var would replace it whole.
        settings = {k: v for k, v in TEST_SETTINGS.items() if k != "switchyard_compose_env"}
        self.extra = {
            **settings,
            "switchyard_canary_steps": [25, 100],
            "switchyard_app": self.app,
            "switchyard_lb_public_port": self.port,
            "switchyard_report_dir": str(workdir / "reports"),
            "switchyard_report_enabled": False,
        }
        fleet_sql(f'CREATE DATABASE "{self.database}"')

    def state(self, host: str) -> Path:
        return self.workdir / host / "state"

    def url(self, host: str) -> str:
        return f"http://{HOSTS[host]}:{self.port}"

    def inventory(self) -> Path:
        """The fleet inventory's group vars, on this test's hosts, with each host's state directory and host vars."""
        inventory = self.workdir / "inventory"
        (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
        group_vars = (FLEET_INVENTORY / "group_vars" / "docker_hosts.yml").read_text()
        group_vars = group_vars.replace("{{ inventory_dir }}/../..", str(REPO_ROOT))
        (inventory / "group_vars" / "docker_hosts.yml").write_text(group_vars)
        hosts_vars = (FLEET_INVENTORY / "hosts.yml").read_text()
        # The group's connection variables, as the fleet inventory has them.
        import yaml  # noqa: PLC0415 - PyYAML comes with ansible-core

        fleet = yaml.safe_load(hosts_vars)["docker_hosts"]
        # Host vars: they outrank the group_vars/ file (this test's database, its state directories).
        database = {
            "host": "10.77.0.1",
            "port": 5432,
            "database": self.database,
            "user": "demo",
            "password_file": "{{ switchyard_state_dir }}/secrets/db_password",
        }
        hosts = {
            h: {
                "ansible_host": HOSTS[h],
                "switchyard_state_dir": str(self.state(h)),
                "switchyard_db": database,
                **self.host_vars.get(h, {}),
            }
            for h in self.hosts
        }
        group = {k: v for k, v in fleet["vars"].items() if k != "switchyard_state_dir"}
        (inventory / "hosts.yml").write_text(json.dumps({"docker_hosts": {"hosts": hosts, "vars": group}}))
        return inventory

    def inventories(self) -> list[str]:
        return ["-i", str(self.inventory())]

    # -- observing ------------------------------------------------------------------------------
    def ledger(self, host: str) -> dict:
        path = self.state(host) / "ledger.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def last_release(self, host: str, kind: str = "release") -> dict:
        return [r for r in self.ledger(host).get("releases", []) if r["kind"] == kind][-1]

    def lock(self, host: str) -> dict | None:
        path = self.state(host) / "release.lock"
        return json.loads(path.read_text()) if path.exists() else None

    def answer(self, host: str) -> dict:
        return requests.get(self.url(host) + "/", timeout=5).json()

    def versions(self, samples: int = 10) -> dict[str, str]:
        """The version each host's LB answers with, over several requests ("v1+v2" while both answer)."""
        return {h: "+".join(sorted({self.answer(h)["version"] for _sample in range(samples)})) for h in self.hosts}

    def migrations_applied(self) -> list[tuple[str, str, str]]:
        """(version, phase, release id) of each row of the migration history db_migration keeps."""
        rows = fleet_sql(
            "SELECT version, phase, coalesce(release_id, '') FROM switchyard_schema_history ORDER BY version, phase",
            self.database,
        )
        return [tuple(row.split("|")) for row in rows.splitlines()]

    def down(self) -> None:
        for host in self.hosts:
            for project in ("blue", "green", "lb"):
                host_docker(
                    host, "compose", "-p", f"{self.app}-{project}", "down", "--volumes", "--timeout", "5", check=False
                )
            for net in ("public", "edge", "data"):
                host_docker(host, "network", "rm", f"{self.app}_{net}", check=False)
        fleet_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
