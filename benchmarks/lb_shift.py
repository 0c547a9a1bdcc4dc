"""Traffic shifts under constant load, every LB kind side by side in one run: the traffic module as a release
calls it in front of HAProxy (Runtime API), Nginx (file, nginx -t, graceful reload, verified) and Traefik (watched
file, read back from its API), and, as the baseline, the runbook's method on HAProxy (sed on the weights in the
configuration, then SIGHUP to the master).

    .venv/bin/python benchmarks/lb_shift.py [--kinds haproxy,nginx,traefik] [--shifts 20] [--rate 300] [--pause 1.0]

One stack per kind (lb role of that kind, PostgreSQL, blue v1, green v2) comes up on the testbed; for each
method in turn a rate-limited load generator sends GET / through that LB from a few keep-alive connections while
the method shifts all traffic blue -> green -> blue --shifts times (2 x shifts moves). It reports failed requests
(non-2xx, socket errors, timeouts), the call's run time, the time from the call to the first response of the new
color, the load rate achieved, the CPU left idle on the machine and the CPU the LB's container used.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.modules import run_module  # noqa: E402
from support.stack import Stack  # noqa: E402
from support.testbed import Testbed  # noqa: E402


class Load:
    """Constant-rate GET / from `connections` keep-alive sessions; every answer is recorded."""

    def __init__(self, url: str, rate: float, connections: int = 4) -> None:
        self.url, self.interval, self.connections = url, connections / rate, connections
        self.records: list[tuple[float, str]] = []  # (time, color or error)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _n in range(connections)]

    def worker(self) -> None:
        session = requests.Session()
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                resp = session.get(self.url, timeout=5)
                outcome = resp.json()["color"] if resp.status_code == 200 else f"HTTP {resp.status_code}"
            except (requests.RequestException, ValueError) as exc:
                outcome = f"error {type(exc).__name__}"
                session = requests.Session()
            with self.lock:
                self.records.append((time.monotonic(), outcome))
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def first(self, color: str, since: float) -> float | None:
        with self.lock:
            return next((t - since for t, o in self.records if t >= since and o == color), None)

    def failures(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t, o in self.records if start <= t <= end and o not in ("blue", "green"))

    def count(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t, _o in self.records if start <= t <= end)


def cpu_snapshot() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def lb_cpu_seconds(container: str) -> float:
    """CPU seconds the container has used, as the Engine counts them (cgroup v1 or v2 alike)."""
    stats = docker.from_env().containers.get(container).stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def shift_with_traffic(stack: Stack, to: str, stats: dict) -> float:
    """The traffic module, as a release's step calls it (weights and states on every route, read back)."""
    weights = {"blue": 256, "green": 0} if to == "blue" else {"blue": 0, "green": 256}
    args = {
        "app": stack.app,
        "path": str(stack.workdir / "state"),
        "lb": {"kind": stack.kind, "dir": str(stack.lb_dir), "container": stack.lb_container},
        "routes": ["api"],
        "weights": weights,
        "states": {"blue": "ready", "green": "ready"},
    }
    started = time.monotonic()
    result = run_module("traffic", args)
    stats["module_s"].append(time.monotonic() - started)
    assert not result.get("failed"), result.get("msg")
    runtime = (result["routes"][0].get("timings") or {}).get("runtime_ms")
    if runtime is not None:
        stats["runtime_ms"].append(runtime)
    return started


def shift_with_sed_and_hup(stack: Stack, to: str, stats: dict) -> float:
    blue, green = (256, 0) if to == "blue" else (0, 256)
    started = time.monotonic()
    subprocess.run(
        [
            "sed",
            "-i",
            "-E",
            f"s/(server api_blue .* weight )[0-9]+/\\1{blue}/; s/(server api_green .* weight )[0-9]+/\\1{green}/",
            stack.config,
        ],
        check=True,
    )
    subprocess.run(["docker", "kill", "--signal", "HUP", stack.lb_container], check=True, capture_output=True)
    stats["module_s"].append(time.monotonic() - started)
    return started


def run_method(stack: Stack, load: Load, shift, shifts: int, pause: float) -> dict:
    stats = {"module_s": [], "runtime_ms": [], "first_response_s": []}
    start = time.monotonic()
    for i in range(shifts * 2):
        to = "green" if i % 2 == 0 else "blue"
        called = shift(stack, to, stats)
        time.sleep(pause)
        first = load.first(to, called)
        if first is not None:
            stats["first_response_s"].append(first)
    end = time.monotonic()
    stats.update(
        requests=load.count(start, end), failed=load.failures(start, end), seconds=end - start, moves=shifts * 2
    )
    return stats


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(name: str, stats: dict, idle: float) -> None:
    print(
        f"{name}: {stats['failed']} failed of {stats['requests']} requests "
        f"({stats['requests'] / stats['seconds']:.0f} req/s, CPU idle {idle:.0%}); "
        f"call median {med(stats['module_s']) * 1000:.0f} ms"
        + (f", Runtime API part median {med(stats['runtime_ms']):.1f} ms" if stats["runtime_ms"] else "")
        + f", LB container CPU {stats['lb_cpu_s']:.2f} s"
        + f", first response of the new color after the call: median {med(stats['first_response_s']) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--kinds", default="haproxy,nginx,traefik")
    parser.add_argument("--shifts", type=int, default=20)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--pause", type=float, default=1.0)
    opts = parser.parse_args()
    kinds = [k for k in opts.kinds.split(",") if k]
    testbed = Testbed.load()
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            (Path(workdir) / kind).mkdir()
        stacks = {
            kind: Stack(testbed, Path(workdir) / kind, f"sytest-bench-{kind[:3]}-{uuid.uuid4().hex[:6]}", kind=kind)
            for kind in kinds
        }
        methods = [(f"traffic ({kind})", stacks[kind], shift_with_traffic) for kind in kinds]
        if "haproxy" in stacks:
            methods.append(("sed + SIGHUP (runbook, haproxy)", stacks["haproxy"], shift_with_sed_and_hup))
        try:
            for stack in stacks.values():
                stack.up()
            results = {}
            for name, stack, shift in methods:
                shift(stack, "blue", {"module_s": [], "runtime_ms": []})
                time.sleep(1)
                with Load(stack.url + "/", opts.rate) as load:
                    time.sleep(2)
                    idle0, total0 = cpu_snapshot()
                    cpu0 = lb_cpu_seconds(stack.lb_container)
                    stats = run_method(stack, load, shift, opts.shifts, opts.pause)
                    stats["lb_cpu_s"] = lb_cpu_seconds(stack.lb_container) - cpu0
                    idle1, total1 = cpu_snapshot()
                results[name] = (stats, (idle1 - idle0) / max(1, total1 - total0))
            for name, (stats, idle) in results.items():
                report(name, stats, idle)
        finally:
            for stack in stacks.values():
                stack.down()


if __name__ == "__main__":
    main()
