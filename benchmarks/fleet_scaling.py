"""How a fleet release's wall time grows with its hosts: the same release on 1, 2 and 3 hosts of the fleet testbed.

The demo application on the fleet testbed's hosts (inventories/fleet, over SSH), in fleet mode (every host in one
batch, moved together), with zero-length windows: two canary steps (50, 100) and the gate turned off
(switchyard_gate_enabled false), so that what is measured is the release's own work - the SSH round trips, the module
calls, the synchronisation points, the deploys - not the windows, which last as long on any number of hosts. No
report. Per number of hosts: v1 released once (not measured), then each run releases v2, v1, v2... (a full release
each: expand, deploy, shift, promote; the demo's v3 needs a schema the contract makes), timed around ansible-playbook.

The baseline is 1 host, measured in the same run, interleaved with the others (round-robin over the host counts, so
that the machine's noise falls on all of them). Target (issue 19): fleet mode grows by <= 20 % per added host.

The testbed's hosts share this machine's cores, so each run also reports where the CPU went: the controller's
(ansible-playbook and its forks and SSH clients: the children's rusage) and the whole machine's busy time (/proc/stat;
the hosts' sshd, Python modules, dockerd and containers are the rest), and the machine's utilisation over the run.
And a second baseline, "apart": the same hosts released as separate one-host applications at the same moment (one
ansible-playbook each) - the same work on the same cores with no fleet in between. A fleet that takes as long as its
hosts apart adds nothing of its own: what grows is the machine's load.
Needs the testbed (make testbed); creates and removes its own applications and databases.

    .venv/bin/python benchmarks/fleet_scaling.py [--runs 3] [--counts 1 2 3] [--apart 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.fleet import FleetApp  # noqa: E402

COUNTS = (1, 2, 3)
SETTINGS = {
    "switchyard_canary_steps": [50, 100],
    "switchyard_gate_enabled": False,
    "switchyard_report_enabled": False,
}


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent busy (every core), from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Apart:
    """The same hosts released as separate one-host applications at the same moment (one ansible-playbook each).

    The hosts' work on this machine's cores with no fleet in between: what the fleet's own machinery is measured
    against."""

    def __init__(self, tmp: Path, count: int) -> None:
        self.apps = [FleetApp(tmp / f"apart{i}", (f"h{i}",), kind="bench") for i in range(1, count + 1)]
        self.hosts = tuple(app.hosts[0] for app in self.apps)

    def play(self, playbook: str, **extra) -> None:
        procs = [app.start(playbook, **extra) for app in self.apps]
        for app, proc in zip(self.apps, procs, strict=True):
            output = proc.communicate(timeout=900)[0]
            assert proc.returncode == 0, f"{app.app}: rc={proc.returncode}\n{output[-4000:]}"

    def versions(self, samples: int = 3) -> dict[str, str]:
        return {h: v for app in self.apps for h, v in app.versions(samples).items()}

    def down(self) -> None:
        for app in self.apps:
            app.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS), help="fleets of these many hosts")
    parser.add_argument("--apart", type=int, default=3, help="also these many one-host releases at once (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sy-bench-fleet-") as tmp:
        cases = {
            f"{n} host(s), one fleet": FleetApp(
                Path(tmp) / f"hosts{n}", tuple(f"h{i}" for i in range(1, n + 1)), kind="bench"
            )
            for n in args.counts
        }
        if args.apart:
            cases[f"{args.apart} hosts, apart"] = Apart(Path(tmp), args.apart)
        for case in cases.values():
            for app in getattr(case, "apps", [case]):
                app.extra.update(SETTINGS)
        times: dict[str, list[float]] = {name: [] for name in cases}
        controller: dict[str, list[float]] = {name: [] for name in cases}
        machine: dict[str, list[float]] = {name: [] for name in cases}
        try:
            for case in cases.values():
                case.play("release.yml", switchyard_version="v1")
            for run in range(args.runs):
                version = "v2" if run % 2 == 0 else "v1"
                for name, case in cases.items():
                    cpu, busy, started = children_cpu_seconds(), machine_busy_seconds(), time.monotonic()
                    case.play("release.yml", switchyard_version=version)
                    times[name].append(time.monotonic() - started)
                    controller[name].append(children_cpu_seconds() - cpu)
                    machine[name].append(machine_busy_seconds() - busy)
                    assert set(case.versions(samples=3).values()) == {version}, case.versions()
                    print(
                        f"run {run + 1}: {name} {times[name][-1]:.1f} s, CPU: controller {controller[name][-1]:.1f} s, "
                        f"machine {machine[name][-1]:.1f} s "
                        f"({machine[name][-1] / times[name][-1] / os.cpu_count() * 100:.0f} % busy)",
                        flush=True,
                    )
        finally:
            for case in cases.values():
                case.down()
    base = statistics.median(times[next(iter(cases))])
    print(f"\nfleet release (gate off, steps 50/100), medians of {args.runs} runs:")
    print(
        "| case | median (s) | runs (s) | vs the first | per added host | controller CPU (s) | machine CPU (s) "
        f"| machine busy ({os.cpu_count()} cores) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, case in cases.items():
        median = statistics.median(times[name])
        n = len(case.hosts)
        per_host = f"{(median / base - 1) / (n - 1) * 100:+.1f} %" if n > 1 else "-"
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        busy = statistics.median(m / t / os.cpu_count() * 100 for m, t in zip(machine[name], times[name], strict=True))
        print(
            f"| {name} | {median:.1f} | {runs} | x{median / base:.2f} | {per_host} | "
            f"{statistics.median(controller[name]):.1f} | {statistics.median(machine[name]):.1f} | {busy:.0f} % |"
        )


if __name__ == "__main__":
    main()
