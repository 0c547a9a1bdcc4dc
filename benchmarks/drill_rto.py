"""The rollback drill's RTO under constant load, per LB kind: how long after the shift call the previous color
serves (a partial drill: its first answer; a full drill: every new request), how long the way back takes, and how
many requests failed - measured by the drill module itself (numbered probes through the LB, their colors from the
LB's own log), as playbooks/drill.yml runs it.

    .venv/bin/python benchmarks/drill_rto.py [--kinds haproxy,nginx,traefik] [--runs 5] [--rate 100] [--hold 1]

For each kind an application is released v1 then v2 with the collection's playbooks (tests/support/release.py),
then, under a constant load of --rate requests/s on GET / from 4 keep-alive connections, --runs partial (10 %) and
--runs full drills alternate, each holding --hold s. Baseline in the same run: the traffic module setting the
weights the LB already has (a no-op call: a module run and a read of the LB, what any change costs at least).
Target (issue 18): the full drill's RTO under 1 s from the shift call. Reported: medians, the RTO's ratio to the
baseline, the failed requests the drills counted in the LB's log, the failures the load generator saw, and per
route what the shift call did in the LB (its commands - Traefik: the files written -, time, settle waits).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.load import Load  # noqa: E402
from support.modules import run_module  # noqa: E402
from support.release import ReleasedApp  # noqa: E402


def module_args(app: ReleasedApp) -> dict:
    lb_dir = str(app.state / "lb")
    return {
        "app": app.app,
        "path": str(app.state),
        "lb": {"kind": app.lb_kind, "dir": lb_dir, "container": f"{app.app}-lb-{app.lb_kind}-1"},
        "routes": ["api"],
    }


def noop_weight_set(app: ReleasedApp) -> float:
    args = module_args(app)
    weights = app.weights()
    started = time.perf_counter()
    result = run_module("traffic", {**args, "weights": weights})
    took = time.perf_counter() - started
    assert not result.get("failed") and not result["changed"], result.get("msg")
    return took * 1000


def drill(app: ReleasedApp, full: bool, hold: int) -> dict:
    result = run_module(
        "drill",
        {
            **module_args(app),
            "full": full,
            "percent": 10,
            "hold_seconds": hold,
            "measure_seconds": 2,
            "probe": {"url": app.url, "path": "/"},
        },
    )
    assert not result.get("failed"), result.get("msg")
    return {**result["drill"], "shift": result.get("routes") or []}


def med(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def bench(kind: str, workdir: Path, runs: int, rate: float, hold: int) -> dict:
    app = ReleasedApp(workdir, kind=f"bd{kind[0]}", reports=False, lb=kind)
    app.extra["switchyard_canary_steps"] = [100]
    try:
        app.play("release.yml", switchyard_version="v1")
        app.play("release.yml", switchyard_version="v2")
        baseline = [noop_weight_set(app) for _run in range(runs)]
        drills = {"partial": [], "full": []}
        load = Load(app.url + "/", rate=rate, seconds=3600).start()
        try:
            time.sleep(1)
            for _run in range(runs):
                drills["partial"].append(drill(app, False, hold))
                drills["full"].append(drill(app, True, hold))
        finally:
            load.stop()
        unmissed = [s for s in load.answers if s != 200]
        return {"baseline": baseline, "drills": drills, "load_failed": len(unmissed), "load_sent": len(load.answers)}
    finally:
        app.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--kinds", default="haproxy,nginx,traefik")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--hold", type=int, default=1)
    opts = parser.parse_args()
    for kind in [k for k in opts.kinds.split(",") if k]:
        with tempfile.TemporaryDirectory() as workdir:
            got = bench(kind, Path(workdir), opts.runs, opts.rate, opts.hold)
        base = med(got["baseline"])
        print(f"{kind}: baseline (no-op weight set, traffic module) median {base:.0f} ms")
        for name, drills in got["drills"].items():
            rto, back = med([d["rto_ms"] for d in drills]), med([d["back_ms"] for d in drills])
            failed = sum(d["failed_requests"] or 0 for d in drills)
            print(
                f"  {name} drill x{len(drills)}: RTO median {rto:.0f} ms (x{rto / base:.2f} the baseline; "
                f"min {min(d['rto_ms'] or 0 for d in drills):.0f}, max {max(d['rto_ms'] or 0 for d in drills):.0f}), "
                f"back median {back:.0f} ms, failed requests (LB log) {failed}, "
                f"share observed median {med([d['observed_percent'] for d in drills]):.1f} %, "
                f"outcomes {sorted({d['outcome'] for d in drills})}"
            )
            # What the shift call did per route (the LB interface's result): its commands, the settle waits.
            shifts = [s for d in drills for s in d["shift"]]
            settled = [s.get("settled_s") or 0 for s in shifts]
            total = med([(s.get("timings") or {}).get("total_ms") for s in shifts])  # Traefik's only
            loaded = med([ms for s in shifts for ms in (s.get("timings") or {}).get("loaded_ms") or []])
            print(
                f"    shift per route: commands {sorted({len(s.get('commands') or []) for s in shifts})}, "
                + ("" if math.isnan(total) else f"{total:.0f} ms in the backend (median), ")
                + ("" if math.isnan(loaded) else f"a write to its read-back {loaded:.0f} ms (median), ")
                + f"settle waited {sum(1 for w in settled if w)} of {len(settled)} (max {max(settled or [0]):.2f} s)"
            )
        print(f"  load: {got['load_failed']} failed of {got['load_sent']} requests")


if __name__ == "__main__":
    main()
