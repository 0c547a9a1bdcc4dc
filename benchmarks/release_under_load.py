"""Releases under constant load: the real playbooks on the local inventory while a rate-limited load
goes through the demo's LB on 127.0.0.1, every request recorded (when, status or error kind, and
the version and color that answered).

    .venv/bin/python benchmarks/release_under_load.py [--rate 100] [--quick] [--runs 3] [--json out.json]

Each run is a fresh application (first release v1, then the load starts) and four scenarios in a row,
each leaving the state the next needs:

1. canary: release v2 through canary steps (10, 50, 100 by default), the gate judging each window;
2. rollback: rollback.yml, back to v1;
3. contract: release v2 again, wait out a short switchyard_rollback_window, contract.yml (v1 retired);
4. failed canary: release v2.1 (v2's image) with FAIL_RATE=0.3 on the candidate: the gate rolls it back.

Per scenario: requests, failures by kind (HTTP status, connection error, timeout) and by the color
that answered (the demo's 500s carry it), p50/p99 latency, the LB's weight changes (polled on its
Runtime API every 0.1 s) next to the ledger's steps, the version share per second, the CPU left idle;
for the failed canary, the time from the gate's verdict (the end of its window) to the LB at 100 % on
the live color. Targets (reported, not asserted): no failed request in 1-3; in 4, failures only
from the candidate while it had a share. --quick: one run, windows of 3 s, about 3 minutes;
otherwise --runs runs and their medians. Needs the testbed (make testbed).
"""

from __future__ import annotations

import argparse
import calendar
import collections
import datetime
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "build" / "collections"))
from support.load import Answer, Load  # noqa: E402
from support.release import ReleasedApp  # noqa: E402
from support.testbed import Testbed  # noqa: E402

from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import (  # noqa: E402
    RuntimeAPI,
    RuntimeAPIError,
)

BACKEND = "be_api"
# The failed canary's candidate: v2's image under another version label (the demo's v1 cannot run
# after the 0002 contract of scenario 3, and its v3 needs that contract first).
FAILING = {
    "switchyard_version": "v2.1",
    "switchyard_images": {"api": "127.0.0.1:5000/switchyard/demo-app:v2"},
    "switchyard_migrations_target": 2,
    "switchyard_candidate_env": {"FAIL_RATE": "0.3"},
}
MARGIN = 0.5  # seconds: a colorless failure this close to the candidate's share counts as during it


class WeightWatch:
    """The LB's weights and states of be_api, read every `interval` seconds on the Runtime API with
    the collection's own client; each change is kept with its time. A module process per read
    (haproxy_weight) would cost about 0.3 s of CPU each time and eat the headroom the load needs."""

    def __init__(self, socket_path: str, interval: float = 0.1) -> None:
        self.api = RuntimeAPI(socket_path, timeout=2)
        self.interval = interval
        self.changes: list[tuple[float, dict]] = []  # (time.time(), {color: [weight, state]})
        self.errors = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        last = None
        while not self.stopping.wait(self.interval):
            try:
                servers = self.api.servers_state(BACKEND).get(BACKEND, {})
            except (RuntimeAPIError, OSError, ValueError):
                self.errors += 1
                continue
            finally:
                self.api.sent.clear()
            view = {name.rsplit("_", 1)[-1]: [s["weight"], s["state"]] for name, s in sorted(servers.items())}
            if view != last:
                self.changes.append((time.time(), view))
                last = view

    def __enter__(self) -> WeightWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(5)

    def at(self, moment: float) -> dict:
        """The weights last seen at `moment`."""
        seen = [view for t, view in self.changes if t <= moment]
        return seen[-1] if seen else {}


# -- small helpers ---------------------------------------------------------------------------------


def cpu_snapshot() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def ledger_time(stamp: str | None) -> float | None:
    """The ledger's 1-second UTC stamps (2026-11-26T17:00:00Z) as epoch seconds."""
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) if stamp else None


def iso_time(stamp: str) -> float:
    """The gate's window times (datetime.isoformat, UTC, microseconds) as epoch seconds."""
    return datetime.datetime.fromisoformat(stamp).timestamp()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def share_of(view: dict, color: str) -> float:
    """The fraction of new traffic `color` gets with these weights (maint gets none)."""
    weights = {c: (w if state != "maint" else 0) for c, (w, state) in view.items()}
    total = sum(weights.values())
    return weights.get(color, 0) / total if total else 0.0


def round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- one scenario ----------------------------------------------------------------------------------


class Scenario:
    """One measured interval: the action (playbooks) and a short tail of load after it."""

    def __init__(self, name: str, app: ReleasedApp, load: Load, watch: WeightWatch, tail: float) -> None:
        self.name, self.app, self.load, self.watch, self.tail = name, app, load, watch, tail

    def run(self, action: Callable[[], dict]) -> dict:
        known = {r["id"] for r in self.app.ledger().get("releases", [])}
        live_before = self.app.ledger().get("live")
        idle0, total0 = cpu_snapshot()
        start = time.time()
        details = action()
        played = time.time()
        time.sleep(self.tail)
        end = time.time()
        idle1, total1 = cpu_snapshot()
        ledger = self.app.ledger()
        entries = [r for r in ledger.get("releases", []) if r["id"] not in known]
        answers = self.load.between(start, end)
        result = {
            "scenario": self.name,
            "seconds": round3(end - start),
            "playbooks_s": round3(played - start),
            "cpu_idle": round3((idle1 - idle0) / max(1, total1 - total0)),
            "live_before": live_before,
            "live_after": ledger.get("live"),
            **details,
            **traffic_figures(answers, start),
            "shifts": self.shifts(start, end),
            "ledger": [ledger_entry(entry, start) for entry in entries],
        }
        release = next((e for e in reversed(entries) if e["kind"] == "release"), None)
        if release and release.get("color"):
            result["candidate"] = release["color"]
            result.update(self.candidate_figures(answers, start, played, release, ledger.get("live")))
        return result

    def shifts(self, start: float, end: float) -> list[dict]:
        """The LB's weights at the start, then each change seen during the scenario."""
        seen = [{"t": 0.0, "lb": self.watch.at(start)}]
        seen += [{"t": round3(t - start), "lb": view} for t, view in self.watch.changes if start < t < end]
        return seen

    def candidate_figures(self, answers: list[Answer], start: float, played: float, release: dict, live: str) -> dict:
        """Who failed, whether colorless failures fell in the candidate's share, what answered after
        the playbooks, and (after a rollback verdict) how long the LB took to be at 100 % on live."""
        candidate = release["color"]
        share = share_intervals(self.watch.changes, candidate, start)
        failures = []
        for answer in answers:
            if answer.kind == "ok":
                continue
            inside = any(a - MARGIN <= answer.at <= b + MARGIN for a, b in share)
            failures.append(
                {"t": round3(answer.at - start), "kind": answer.kind, "color": answer.color, "in_share": inside}
            )
        figures = {
            "candidate_share": [[round3(a - start), round3(b - start)] for a, b in share],
            "canary_steps": canary_steps(self.watch.changes, candidate, start, played),
            # failures neither answered by the candidate nor colorless during its share (target: none)
            "failed_not_candidate": sum(
                1 for f in failures if f["color"] != candidate and not (f["color"] is None and f["in_share"])
            ),
            "failed_requests": failures[:500],
            "after_playbooks": dict(collections.Counter(a.color or a.kind for a in answers if a.at > played)),
        }
        verdict = next((v for v in reversed(release.get("verdicts", [])) if v["verdict"] == "rollback"), None)
        if verdict and (verdict.get("window") or {}).get("end"):
            decided = iso_time(verdict["window"]["end"])
            back = next(
                (t for t, view in self.watch.changes if t >= decided and share_of(view, candidate) == 0.0), None
            )
            last = max((a.at for a in answers if a.color == candidate), default=None)
            figures["rollback"] = {
                "verdict_at": round3(decided - start),
                "verdict_to_lb_100_s": round3(back - decided if back else None),
                "verdict_to_last_candidate_request_s": round3(last - decided if last else None),
                "verdict_to_ledger_finished_s": round3(
                    ledger_time(release.get("finished_at")) - decided if release.get("finished_at") else None
                ),
                "failed_after_verdict": sum(1 for f in failures if f["t"] >= decided - start),
                "after_lb_100": dict(collections.Counter(a.color or a.kind for a in answers if back and a.at > back)),
                "live": live,
            }
        return figures


def canary_steps(changes: list[tuple[float, dict]], color: str, start: float, end: float) -> list[dict]:
    """Each change of `color`'s share of new traffic seen on the LB during [start, end]: when (s from
    the scenario's start), the share, and how long it held until the next change."""
    steps, last = [], None
    for t, view in changes:
        share = round(share_of(view, color), 2)
        if start < t <= end and share != last:
            steps.append({"t": round3(t - start), "share": share})
        last = share
    for index, step in enumerate(steps):
        step["held_s"] = round3(steps[index + 1]["t"] - step["t"]) if index + 1 < len(steps) else None
    return steps


def share_intervals(changes: list[tuple[float, dict]], color: str, start: float) -> list[tuple[float, float]]:
    """[(from, to)] while `color` had a share of new traffic, from the polled weights."""
    intervals, opened = [], None
    for t, view in changes:
        if share_of(view, color) > 0 and opened is None:
            opened = max(t, start)
        elif share_of(view, color) == 0 and opened is not None:
            intervals.append((opened, t))
            opened = None
    if opened is not None:
        intervals.append((opened, time.time()))
    return [(a, b) for a, b in intervals if b >= start]


def traffic_figures(answers: list[Answer], start: float) -> dict:
    failed = [a for a in answers if a.kind != "ok"]
    latencies = [a.seconds * 1000 for a in answers if a.status != -1]
    buckets: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for answer in answers:
        # version/color: the failed canary's v2.1 runs v2's image, which answers "v2" (the image's version)
        buckets[int(answer.at - start)][f"{answer.version}/{answer.color}" if answer.kind == "ok" else "failed"] += 1
    share = []
    for second in range(max(buckets, default=-1) + 1):
        counts = buckets.get(second, collections.Counter())
        total = sum(counts.values())
        share.append({"t": second, "n": total, **{k: round(v / total, 3) for k, v in sorted(counts.items())}})
    return {
        "requests": len(answers),
        "rate": round3(len(answers) / max(1e-9, (answers[-1].at - answers[0].at))) if len(answers) > 1 else None,
        "failed": len(failed),
        "failed_by_kind": dict(collections.Counter(a.kind for a in failed)),
        "failed_by_color": dict(collections.Counter(a.color or "none" for a in failed)),
        "p50_ms": round3(percentile(latencies, 0.50)),
        "p99_ms": round3(percentile(latencies, 0.99)),
        "max_ms": round3(max(latencies, default=None)) if latencies else None,
        "answered_by": dict(collections.Counter(f"{a.version}/{a.color}" for a in answers if a.kind == "ok")),
        "version_share": share,
    }


def ledger_entry(entry: dict, start: float) -> dict:
    """A release/rollback/contract of the ledger, its steps' times relative to the scenario's start
    (the ledger keeps whole seconds; a judged step's `at` is the time its verdict was recorded)."""

    def rel(stamp):
        moment = ledger_time(stamp)
        return None if moment is None else round(moment - start, 1)

    return {
        "kind": entry["kind"],
        "id": entry["id"],
        "outcome": entry.get("outcome"),
        "color": entry.get("color"),
        "version": entry.get("version"),
        "started": rel(entry.get("started_at")),
        "finished": rel(entry.get("finished_at")),
        "steps": [
            {
                "name": s["name"],
                "at": rel(s.get("at")),
                **({"weights": s["weights"]} if s.get("weights") else {}),
                **({"verdict": s["verdict"]["verdict"]} if isinstance(s.get("verdict"), dict) else {}),
            }
            for s in entry.get("steps", [])
        ],
    }


# -- one run: a fresh application and the four scenarios ------------------------------------------


def timed_play(app: ReleasedApp, playbook: str, ok: bool = True, **extra) -> tuple[float, str]:
    started = time.monotonic()
    result = app.play(playbook, ok=ok, **extra)
    return time.monotonic() - started, result.stdout


def run_once(opts: argparse.Namespace, number: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-load-", ignore_cleanup_errors=True) as workdir:
        app = ReleasedApp(Path(workdir), kind="bench-load")
        app.extra.update(
            {
                "switchyard_canary_steps": opts.steps,
                "switchyard_canary_window": opts.window,
                "switchyard_rollback_window": opts.rollback_window,
                "switchyard_lb_bind_address": "127.0.0.1",
            }
        )
        try:
            first, _out = timed_play(app, "release.yml", switchyard_version="v1")
            load = Load(app.url + "/", rate=opts.rate, seconds=3600, connections=opts.connections, record=True)
            with WeightWatch(app.socket) as watch:
                load.start()
                try:
                    time.sleep(2)  # connections open, rate settled
                    idle0, total0 = cpu_snapshot()
                    time.sleep(3)  # the CPU the load leaves idle, before any playbook runs
                    idle1, total1 = cpu_snapshot()
                    results = scenarios(opts, number, app, load, watch)
                finally:
                    load.stop()
            idle = (idle1 - idle0) / max(1, total1 - total0)
            print(f"run {number}: CPU idle with the load alone (before the scenarios): {idle:.0%}")
            return {
                "run": number,
                "app": app.app,
                "first_release_s": round3(first),
                "cpu_idle_load_only": round3(idle),
                "scenarios": results,
            }
        finally:
            app.down()


def scenarios(opts: argparse.Namespace, number: int, app: ReleasedApp, load: Load, watch: WeightWatch) -> list[dict]:
    def measure(name: str, action: Callable[[], dict]) -> dict:
        result = Scenario(name, app, load, watch, opts.tail).run(action)
        report(number, result)
        return result

    def canary() -> dict:
        took, _out = timed_play(app, "release.yml", switchyard_version="v2")
        return {"release_s": round3(took)}

    def rollback() -> dict:
        took, _out = timed_play(app, "rollback.yml")
        return {"rollback_s": round3(took)}

    def contract() -> dict:
        released, _out = timed_play(app, "release.yml", switchyard_version="v2")
        ledger = app.ledger()
        demoted = ledger_time(ledger["colors"][ledger["previous"]]["demoted_at"])
        waited = max(0.0, demoted + opts.rollback_window + 1 - time.time())
        time.sleep(waited)
        contracted, _out = timed_play(app, "contract.yml")
        return {"release_s": round3(released), "waited_s": round3(waited), "contract_s": round3(contracted)}

    def failed_canary() -> dict:
        took, out = timed_play(app, "release.yml", ok=False, **FAILING)
        said = next((line.strip() for line in out.splitlines() if "canary gate at" in line), "")
        if not said:  # the release failed before the gate judged: say why
            errors = [line.strip() for line in out.splitlines() if line.startswith(("[ERROR]", "fatal:"))]
            said = "NO GATE VERDICT: " + " | ".join(errors[-2:])
            print(f"    {said[:1000]}")
        return {"release_s": round3(took), "gate_said": said[:1000]}

    return [
        measure("1 canary v1 -> v2", canary),
        measure("2 rollback -> v1", rollback),
        measure("3 release v2, contract", contract),
        measure("4 failed canary (FAIL_RATE 0.3)", failed_canary),
    ]


# -- reporting -------------------------------------------------------------------------------------


def share_summary(result: dict) -> str:
    """The share per second of the color traffic goes to (the candidate, or the live color after a
    rollback), runs of equal values folded: 'v2/green 0.0 x12s > 0.1 x4s > ...'."""
    color = result.get("candidate") or result["live_after"]
    keys = sorted({k for b in result["version_share"] for k in b if k.endswith("/" + color)})
    values = [round(sum(b.get(k, 0.0) for k in keys), 1) for b in result["version_share"] if b["n"]]
    folded: list[list] = []
    for value in values:
        if folded and folded[-1][0] == value:
            folded[-1][1] += 1
        else:
            folded.append([value, 1])
    return f"{'+'.join(keys) or color} share/s: " + " > ".join(f"{v:.1f} x{n}s" for v, n in folded)


def report(number: int, r: dict) -> None:
    shifts = ", ".join(
        f"{s['t']:.1f}s " + "/".join(f"{c}={w}{'' if st == 'ready' else ' ' + st}" for c, (w, st) in s["lb"].items())
        for s in r["shifts"]
    )
    print(
        f"run {number} | {r['scenario']}: {r['seconds']:.1f} s, {r['requests']} requests ({r['rate'] or 0:.0f}/s), "
        f"failed {r['failed']} by kind {r['failed_by_kind']} by color {r['failed_by_color']}, "
        f"p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms, CPU idle {r['cpu_idle']:.0%}"
    )
    print(f"    LB weights: {shifts}")
    for entry in r["ledger"]:
        steps = ", ".join(
            f"{s['name']}@{s['at']}{' ' + s['verdict'] if 'verdict' in s else ''}" for s in entry["steps"]
        )
        print(f"    ledger {entry['kind']} {entry['outcome']} (finished @{entry['finished']} s): {steps}")
    print(f"    {share_summary(r)}")
    if r.get("canary_steps"):
        held = ", ".join(
            f"{s['share']:.0%} @{s['t']:.1f}s" + (f" for {s['held_s']:.1f}s" if s["held_s"] is not None else "")
            for s in r["canary_steps"]
        )
        print(f"    candidate {r['candidate']} share on the LB: {held}")
    if "rollback" in r:
        rb = r["rollback"]
        print(
            f"    verdict @{rb['verdict_at']} s -> LB 100 % on {rb['live']}: {rb['verdict_to_lb_100_s']} s; "
            f"last candidate request {rb['verdict_to_last_candidate_request_s']} s; "
            f"failed after the verdict {rb['failed_after_verdict']}; answers after the LB moved: {rb['after_lb_100']}; "
            f"after the playbooks: {r['after_playbooks']}"
        )
        print(f"    failures neither from the candidate nor colorless during its share: {r['failed_not_candidate']}")


def medians(runs: list[dict]) -> list[dict]:
    rows = []
    for index, first in enumerate(runs[0]["scenarios"]):
        same = [run["scenarios"][index] for run in runs]
        row = {"scenario": first["scenario"]}
        for key in ("requests", "failed", "p50_ms", "p99_ms", "seconds", "playbooks_s", "cpu_idle"):
            row[key] = median([s[key] for s in same])
        row["failed_each_run"] = [s["failed"] for s in same]
        held: dict[str, list] = collections.defaultdict(list)
        for s in same:
            for step in s.get("canary_steps", []):
                if 0 < step["share"] < 1 and step["held_s"] is not None:
                    held[f"{step['share']:.0%}"].append(step["held_s"])
        row.update({f"step_{share}_held_s": round3(median(times)) for share, times in held.items()})
        if all("rollback" in s for s in same):
            for key in ("verdict_to_lb_100_s", "verdict_to_last_candidate_request_s", "failed_after_verdict"):
                row[key] = median([s["rollback"][key] for s in same])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rate", type=float, default=100, help="requests/s through the LB (default 100)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections (default 4)")
    parser.add_argument("--quick", action="store_true", help="one run, the shortest settings (about 3 minutes)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the four scenarios (default 3; --quick: 1)")
    parser.add_argument("--window", type=float, help="canary window, s (default 5; --quick: 3)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50, 100], help="canary steps (10 50 100)")
    parser.add_argument("--rollback-window", type=int, help="before contract.yml, s (default 10; --quick: 5)")
    parser.add_argument("--tail", type=float, default=2.0, help="load kept in a scenario after its playbooks, s")
    parser.add_argument("--json", type=Path, help="write the figures there")
    opts = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each scenario's figures as soon as it ends
    if opts.quick:
        opts.runs = 1
    opts.window = opts.window or (3 if opts.quick else 5)
    opts.rollback_window = opts.rollback_window or (5 if opts.quick else 10)
    Testbed.load()
    load_before = os.getloadavg()
    started = time.time()
    runs, error = [], None
    for number in range(1, opts.runs + 1):
        try:
            runs.append(run_once(opts, number))
        except AssertionError as exc:  # a playbook failed: keep the runs done so far, say which one broke
            error = f"run {number}: {str(exc)[-3000:]}"
            print(f"\nRUN {number} FAILED (the runs before it are kept):\n{error}", file=sys.stderr)
            break
    summary = medians(runs) if runs else []
    print(f"\nmedians of {len(runs)} run(s) at {opts.rate:.0f} req/s, windows {opts.window} s, steps {opts.steps}:")
    for row in summary:
        print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))
    load_after = os.getloadavg()
    alone = median([run["cpu_idle_load_only"] for run in runs])
    print(f"CPU idle with the load alone (median): {alone:.0%}" if alone is not None else "no run completed")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; took {time.time() - started:.0f} s")
    if opts.json:
        document = {
            "command": " ".join(sys.argv),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "seconds": round3(time.time() - started),
            "runs": runs,
            "medians": summary,
            "error": error,
        }
        opts.json.write_text(json.dumps(document, indent=1))
    if error:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
