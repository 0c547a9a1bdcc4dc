"""The outage of a recreate (switchyard_strategy: recreate) against the new version's own health time.

The demo application on the local inventory (HAProxy), v1 released once, then each run recreates the live color
with v2, then with v1 again, under constant load (50 requests/s from 4 keep-alive connections). Per recreate:

- outage (ledger): the recreate step's outage_ms - the maintenance page checked on through the LB, to the new
  version checked answering through the LB;
- outage (clients): from the first to the last maintenance page the load received;
- health (ledger): the recreate's health_s - the new version's health time, from `compose up` until Compose says it
  is healthy, as compose_project measures it (ready_s): the baseline, measured in the same recreate, what any
  recreate must wait for. The files are laid out and the images pulled before the page goes on, outside both;
- stop (ledger): the recreate's stop_s - the old version's stop (compose stop until its containers exited: the
  application's own shutdown), inside the outage;
- LB up (ledger): lb_up_s - how long after Compose said healthy the LB saw the color UP;
- the rest of the outage (outage - stop - health - LB up): Switchyard's own - the page's checks, the module calls,
  the staged files put in place, the project rendered and pinned;
- failed requests: answers that were neither 200 nor the maintenance page (503, Retry-After), connection errors
  included.

Target (issue 18): outage <= health + 1 s (median). Needs the testbed; creates and removes sytest-bench-recreate.

    .venv/bin/python benchmarks/recreate_outage.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.load import Load  # noqa: E402

APP = "sytest-bench-recreate"
PORT = 18991
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def play(extra: dict) -> None:
    result = subprocess.run(
        [PLAYBOOK, "-i", str(ROOT / "inventories" / "local"), str(ROOT / "playbooks" / "release.yml")]
        + ["-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"release.yml failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")


def down() -> None:
    for project in ("blue", "green", "lb", "data"):
        subprocess.run(
            ["docker", "compose", "-p", f"{APP}-{project}", "down", "--volumes", "--timeout", "5"],
            capture_output=True,
            check=False,
        )
    for net in ("public", "edge", "data"):
        subprocess.run(["docker", "network", "rm", f"{APP}_{net}"], capture_output=True, check=False)


def recreate(base: dict, state: Path, version: str) -> dict:
    load = Load(f"http://127.0.0.1:{PORT}/", rate=50, seconds=180, record=True).start()
    try:
        play({**base, "switchyard_version": version})
    finally:
        load.stop()
    ledger = json.loads((state / "ledger.json").read_text())
    step = next(s for s in ledger["releases"][-1]["steps"] if s["name"] == "recreate")
    pages = [a.at for a in load.records if a.maintenance]
    failed = [a for a in load.records if a.status != 200 and not a.maintenance]
    return {
        "version": version,
        "outage_s": step["outage_ms"] / 1000,
        "health_s": step["health_s"],
        "stop_s": step.get("stop_s", 0),
        "lb_up_s": step.get("lb_up_s", 0),
        "clients_s": (max(pages) - min(pages)) if pages else 0.0,
        "pages": len(pages),
        "failed": len(failed),
        "requests": len(load.records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="each run recreates twice (v2, then v1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        state = Path(tmp) / "state"
        base = {
            "switchyard_app": APP,
            "switchyard_strategy": "recreate",
            "switchyard_lb_public_port": PORT,
            "switchyard_state_dir": str(state),
            "switchyard_report_enabled": False,
            "switchyard_compose_env": {"DEMO_SECRETS_DIR": str(state / "secrets"), "DEMO_HEALTH_START_PERIOD": "5s"},
        }
        try:
            down()
            play({**base, "switchyard_version": "v1"})
            results = []
            for _run in range(args.runs):
                for version in ("v2", "v1"):
                    results.append(recreate(base, state, version))
                    print(json.dumps(results[-1]), flush=True)
        finally:
            down()
    outage = statistics.median(r["outage_s"] for r in results)
    health = statistics.median(r["health_s"] for r in results)
    stop = statistics.median(r["stop_s"] for r in results)
    rest = statistics.median(r["outage_s"] - r["stop_s"] - r["health_s"] - r["lb_up_s"] for r in results)
    clients = statistics.median(r["clients_s"] for r in results)
    lb_up = statistics.median(r["lb_up_s"] for r in results)
    failed = sum(r["failed"] for r in results)
    requests = sum(r["requests"] for r in results)
    print(f"recreates: {len(results)}, requests: {requests}, failed (not 200, not the page): {failed}")
    print(f"outage (ledger)  median {outage:6.2f} s   runs {[round(r['outage_s'], 2) for r in results]}")
    print(f"outage (clients) median {clients:6.2f} s   runs {[round(r['clients_s'], 2) for r in results]}")
    print(f"health (ledger)  median {health:6.2f} s   runs {[round(r['health_s'], 2) for r in results]}")
    print(f"stop (ledger)    median {stop:6.2f} s   runs {[round(r['stop_s'], 2) for r in results]}")
    print(f"LB UP after healthy median {lb_up:5.2f} s   runs {[round(r['lb_up_s'], 2) for r in results]}")
    print(f"the rest (outage - stop - health - LB up) median {rest:5.2f} s")
    verdict = "met" if outage <= health + 1 else "NOT met"
    print(
        f"outage - health: {outage - health:+.2f} s (x{outage / health:.2f}); target outage <= health + 1 s: {verdict}"
    )


if __name__ == "__main__":
    main()
