"""A release report must cost little next to the release: 100,000 log lines of a 4-step release.

    .venv/bin/python benchmarks/report_generation.py [--lines 100000] [--runs 5]

A release with 4 canary steps (10, 25, 50, 100 %) over 1,000 s at 100 requests/s: lines in the lb
role's log format as `docker logs --timestamps` prints them. Each run, in a fresh Python process as
the modules run: the Docker host's part (parse the lines, collect the report's data, JSON) and the
controller's part (import matplotlib, draw the four charts, render the page). Prints the medians.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "build" / "collections"
START = 1_796_400_000.0  # 2026-12-04T00:00:00Z


def stamp(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def make_release(lines: int) -> tuple[dict, list[str]]:
    rate = 100.0
    duration = lines / rate
    steps, percents = [], [10, 25, 50, 100]
    for i, percent in enumerate(percents):
        at = START + 60 + i * (duration - 60) / len(percents)
        weights = {"blue": 256 - round(2.56 * percent), "green": round(2.56 * percent)}
        step = {"name": f"canary-{percent}", "at": stamp(at)[:19] + "Z", "weights": weights}
        if percent < 100:
            step["verdict"] = {
                "verdict": "promote",
                "reason": "all passed",
                "window": {"start": stamp(at + 1), "end": stamp(at + 31)},
                "metrics": [{"metric": "error_rate", "status": "pass", "canary": 0.0, "baseline": 0.0}],
            }
        steps.append(step)
    entry = {
        "id": "bench-1",
        "kind": "release",
        "version": "v2",
        "color": "green",
        "from_color": "blue",
        "owner": "bench@host",
        "started_at": stamp(START + 60)[:19] + "Z",
        "finished_at": stamp(START + duration)[:19] + "Z",
        "outcome": "promoted",
        "reason": None,
        "images": {"api": "r/app@sha256:" + "0" * 64},
        "steps": steps,
        "verdicts": [],
    }
    rng = random.Random(7)
    out = []
    for i in range(lines):
        t = START + i / rate
        share = next((s["weights"]["green"] / 256 for s in reversed(steps) if stamp(0) and s["at"] <= stamp(t)), 0)
        color = "green" if rng.random() < share else "blue"
        status = 503 if rng.random() < 0.002 else 200
        out.append(f'{stamp(t)} 172.18.0.1 be_api/api_{color} {status} 1 {rng.randint(1, 40)} 233 "GET / HTTP/1.1"')
    return entry, out


HOST = """
import json, sys, time
t = time.perf_counter()
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_timed_lines
from ansible_collections.switchyard.release.plugins.module_utils.report.collect import collect
entry = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
records = [(a, "api", s.rsplit("_", 1)[1], st, l) for a, _b, s, st, l in parse_timed_lines(lines, ["be_api"])]
report = collect("bench", entry, records, records[-1][0] + 1)
open(sys.argv[3], "w").write(json.dumps(report))
print(time.perf_counter() - t)
"""

CONTROLLER = """
import json, sys, time
t = time.perf_counter()
from ansible_collections.switchyard.release.plugins.module_utils.report.render import render
html = render(json.load(open(sys.argv[1])))
open(sys.argv[2], "w").write(html)
print(time.perf_counter() - t)
"""


# The floor, in the same run: reading the same log and entry and splitting the lines, nothing else.
FLOOR = """
import json, sys, time
began = time.perf_counter()
json.loads(open(sys.argv[1]).read())
lines = open(sys.argv[2]).read().splitlines()
print(time.perf_counter() - began)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    entry, lines = make_release(args.lines)
    env = {"PYTHONPATH": str(COLLECTIONS)}
    host, controller, floor = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {n: str(Path(tmp) / n) for n in ("entry.json", "log.txt", "report.json", "report.html")}
        Path(paths["entry.json"]).write_text(json.dumps(entry))
        Path(paths["log.txt"]).write_text("\n".join(lines) + "\n")
        for _run in range(args.runs):
            run = [sys.executable, "-c", FLOOR, paths["entry.json"], paths["log.txt"]]
            floor.append(float(subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout))
            run = [sys.executable, "-c", HOST, paths["entry.json"], paths["log.txt"], paths["report.json"]]
            host.append(float(subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout))
            run = [sys.executable, "-c", CONTROLLER, paths["report.json"], paths["report.html"]]
            controller.append(float(subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout))
        size = Path(paths["report.html"]).stat().st_size
    total = [h + c for h, c in zip(host, controller, strict=True)]
    print(f"{args.lines} lines, 4 steps, {args.runs} runs (medians):")
    print(f"  host: parse + collect + JSON   {statistics.median(host):.3f} s")
    print(f"  controller: charts + page      {statistics.median(controller):.3f} s  ({size / 1024:.0f} KiB)")
    print(f"  total                          {statistics.median(total):.3f} s (target < 2 s)")
    print(
        f"  floor: read + split the log    {statistics.median(floor):.3f} s "
        f"(host part x{statistics.median(host) / statistics.median(floor):.1f})"
    )


if __name__ == "__main__":
    main()
