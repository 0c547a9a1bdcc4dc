"""Compose projects for tests: unique names under the sytest- prefix, always taken down.

The testbed removes whatever a killed run left under that prefix, so the prefix is a contract
with tests/testbed/testbed.sh (TESTBED_TEST_PROJECT_PREFIX).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

TEST_PREFIX = "sytest-"


def unique_name(kind: str) -> str:
    return f"{TEST_PREFIX}{kind}-{uuid.uuid4().hex[:8]}"


# Ports this process handed out: a port is free again once its test's Docker project publishes it, or before.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1, never the same twice in a process. Under pytest-xdist each worker picks from a range
    of its own below the kernel's ephemeral range (gw0 20000-22999, gw1 23000-25999, ... gw3 29000-31999), so two
    workers never get the same port between its check and its use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        index = int(worker[2:])
        if index > 3:
            raise RuntimeError(f"free_port: at most 4 xdist workers have port ranges of their own ({worker})")
        candidates = random.sample(range(20000 + 3000 * index, 23000 + 3000 * index), 3000)
    else:
        candidates = [0] * 100
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("free_port: no free port left")


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed rc={result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class ComposeProject:
    """One `docker compose -p NAME -f ...` project with its own environment."""

    name: str
    files: list[Path]
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = ["docker", "compose", "-p", self.name]
        for f in self.files:
            cmd += ["-f", str(f)]
        result = subprocess.run(
            cmd + list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            check=False,
        )
        if check and result.returncode != 0:
            command = " ".join(cmd + list(args))
            raise AssertionError(f"{command} failed rc={result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def psql_file(self, sql_file: Path, service: str = "db", user: str = "demo", database: str = "demo") -> str:
        """Run a SQL file with psql inside a service, statement by statement (autocommit)."""
        cmd = [
            "exec",
            "-T",
            service,
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            user,
            "-d",
            database,
            "-f",
            "-",
        ]
        result = subprocess.run(
            ["docker", "compose", "-p", self.name, *cmd],
            input=sql_file.read_text(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"psql -f {sql_file} in {self.name}/{service} failed rc={result.returncode}\n{result.stderr}"
            )
        return result.stdout

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def ensure_network(name: str, internal: bool) -> None:
    if docker("network", "inspect", name, check=False).returncode != 0:
        docker("network", "create", *(["--internal"] if internal else []), name)


def remove_network(name: str) -> None:
    docker("network", "rm", name, check=False)


def wait_http(url: str, seconds: float = 30, **kwargs) -> requests.Response:
    """GET url until it answers 200, or fail with the last answer."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            resp = requests.get(url, timeout=2, **kwargs)
            if resp.status_code == 200:
                return resp
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {seconds} s (last: {last})")
