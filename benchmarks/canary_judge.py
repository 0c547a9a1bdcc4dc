"""Parsing 100,000 HAProxy log lines and judging them must cost little next to a canary window.

    .venv/bin/python benchmarks/canary_judge.py [--lines 100000] [--runs 5]

Lines are made in the lb role's log format, 90 % baseline and 10 % canary, with a few errors and a
spread of latencies; each run parses them and runs the judgement (Fisher, Mann-Whitney,
percentiles). Prints the median seconds, and, as the baseline measured in the same run, the time
of only reading the same lines with str.split.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build" / "collections"))
from ansible_collections.switchyard.release.plugins.module_utils.canary import judge  # noqa: E402
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_lines  # noqa: E402

LIMITS = {
    "max_error_rate": 0.01,
    "max_error_rate_increase": 0.0,
    "max_p95_ms": 500,
    "max_p99_ms": 1000,
    "max_latency_ratio": 1.5,
    "min_requests": 300,
    "min_samples": 50,
    "confidence": 0.95,
}


def make_lines(count: int) -> list[str]:
    rng = random.Random(7)
    lines = []
    for i in range(count):
        server = "api_green" if rng.random() < 0.1 else "api_blue"
        status = 500 if rng.random() < 0.005 else 200
        ta = int(rng.lognormvariate(2.5, 0.6))
        lines.append(
            f"26/Nov/2026:15:20:{i % 60:02d}.{i % 1000:03d} 172.18.0.1 be_api/{server} {status} "
            f'{max(0, ta - 1)} {ta} 203 "GET /items?page={i % 50} HTTP/1.1"'
        )
    return lines


def judge_lines(lines: list[str]) -> str:
    servers = parse_lines(lines, "be_api")
    canary, baseline = servers["api_green"], servers["api_blue"]
    metrics = judge.error_rates(
        {"requests": canary.requests, "errors": canary.errors},
        {"requests": baseline.requests, "errors": baseline.errors},
        LIMITS,
        "log",
    )
    metrics += judge.latencies(canary.latencies_ms, baseline.latencies_ms, LIMITS, "log")
    return judge.verdict(metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    lines = make_lines(opts.lines)
    gate, split_only = [], []
    for _run in range(opts.runs):
        started = time.perf_counter()
        verdict = judge_lines(lines)
        gate.append(time.perf_counter() - started)
        started = time.perf_counter()
        for line in lines:
            line.split()
        split_only.append(time.perf_counter() - started)
    g, s = statistics.median(gate), statistics.median(split_only)
    print(
        f"parse + judge {opts.lines:,} lines: median {g:.3f} s (runs {[round(t, 3) for t in gate]}), verdict {verdict}"
    )
    print(f"baseline, str.split of the same lines: median {s:.3f} s; ratio {g / s:.1f}")


if __name__ == "__main__":
    main()
