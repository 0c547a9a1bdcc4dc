"""The no-op path of compose_project (state=present on a converged project, which every release
hits) against plain `docker compose up -d --wait` on the same 3-service project.

    .venv/bin/python benchmarks/compose_noop.py [--runs 5]

Runs are interleaved (module, compose, module, ...) so machine noise hits both alike; prints the
median of each and their ratio. Needs the testbed (make testbed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = Path(os.environ.get("TESTBED_DIR", "/var/lib/switchyard-testbed")) / "summary.json"
PROJECT = "sytest-bench-noop"

COMPOSE = """
services:
{services}
"""
SERVICE = """  {name}:
    image: {image}
    command: ["python3", "-m", "http.server", "8000"]
    read_only: true
    healthcheck:
      test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/"]
      interval: 2s
      start_period: 5s
      start_interval: 1s
"""


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def module(args: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        handle.flush()
        out = run(
            [
                sys.executable,
                "-m",
                "ansible_collections.switchyard.release.plugins.modules.compose_project",
                handle.name,
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT / "build" / "collections")},
        )
    return json.loads(out.stdout)


def timed(fn, *args):
    """(seconds, result) of fn(*args)."""
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    image = json.loads(SUMMARY.read_text())["images"]["127.0.0.1:5000/switchyard/demo-app:v1"]
    with tempfile.TemporaryDirectory() as workdir:
        compose_file = Path(workdir) / "compose.yaml"
        compose_file.write_text(
            COMPOSE.format(services="".join(SERVICE.format(name=n, image=image) for n in ("web", "worker", "cron")))
        )
        args = {"project": PROJECT, "files": [str(compose_file)], "wait_timeout": 60}
        compose_up = [
            "docker",
            "compose",
            "-p",
            PROJECT,
            "-f",
            str(compose_file),
            "-f",
            str(Path(workdir) / f".{PROJECT}.switchyard.override.yml"),
            "up",
            "-d",
            "--wait",
        ]
        try:
            first = module(args)
            assert first.get("changed") and not first.get("failed"), first
            module_times, compose_times = [], []
            for _run in range(opts.runs):
                seconds, result = timed(module, args)
                assert result["changed"] is False, result
                module_times.append(seconds)
                compose_times.append(timed(run, compose_up)[0])
        finally:
            subprocess.run(
                ["docker", "compose", "-p", PROJECT, "down", "--timeout", "5"], capture_output=True, check=False
            )
    m, c = statistics.median(module_times), statistics.median(compose_times)
    print(f"compose_project present (no-op), 3 services: median {m:.3f} s  runs {[round(t, 3) for t in module_times]}")
    print(f"docker compose up -d --wait, same project:   median {c:.3f} s  runs {[round(t, 3) for t in compose_times]}")
    print(f"ratio module / compose: {m / c:.2f}")


if __name__ == "__main__":
    main()
