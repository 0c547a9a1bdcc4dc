"""Wall time of the playbooks an operator runs, end to end on the local inventory:

- rollback.yml (target: 1.5 s on this machine; one module call), alternating between the two
  colors, so each run is a real rollback that moves all traffic;
- release.yml with zero-length canary windows (no gate: Ansible's own overhead; target 12 s), once
  with the default four steps and once with a single 100 % step - the difference over three steps
  is the cost of one canary step;
- the floor: ansible-playbook running one debug task on the same inventory, measured in the same
  run, so the ratios hold on a noisy machine.

    .venv/bin/python benchmarks/release_playbooks.py [--runs 5]

Needs the testbed (make testbed); creates and removes the application sytest-bench-release.
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
APP = "sytest-bench-release"
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
FLOOR = """\
- name: The floor - one task
  hosts: docker_hosts
  gather_facts: false
  tasks:
    - name: Nothing
      ansible.builtin.debug:
        msg: floor
"""


def play(playbook: str, extra: dict) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [PLAYBOOK, "-i", str(ROOT / "inventories" / "local"), playbook, "-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        check=False,
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{playbook} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return took


def down(state: Path) -> None:
    for project in ("blue", "green", "lb", "data"):
        subprocess.run(
            ["docker", "compose", "-p", f"{APP}-{project}", "down", "--volumes", "--timeout", "5"],
            capture_output=True,
            check=False,
        )
    for net in ("public", "edge", "data"):
        subprocess.run(["docker", "network", "rm", f"{APP}_{net}"], capture_output=True, check=False)


def report(name: str, times: list[float], floor: float) -> None:
    median = statistics.median(times)
    print(f"{name:<44} median {median:6.2f} s  x{median / floor:5.1f} floor  runs {[round(t, 2) for t in times]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        state = Path(tmp) / "state"
        base = {
            "switchyard_app": APP,
            "switchyard_lb_public_port": 18990,
            "switchyard_state_dir": str(state),
            "switchyard_gate_enabled": False,  # the steps, without their windows
            "switchyard_compose_env": {"DEMO_SECRETS_DIR": str(state / "secrets"), "DEMO_HEALTH_START_PERIOD": "5s"},
        }
        floor_file = Path(tmp) / "floor.yml"
        floor_file.write_text(FLOOR)
        releases = ROOT / "playbooks" / "release.yml"
        try:
            play(str(releases), {**base, "switchyard_version": "v1"})
            floors, rollbacks, four, one = [], [], [], []
            # v1 is live: each run releases v2 with four steps, rolls back twice (to v1 and to v2
            # again), then releases v1 with one step. From the second run on, the candidate color
            # already runs that version, so Compose recreates nothing: Ansible's overhead remains.
            for _run in range(args.runs):
                floors.append(play(str(floor_file), base))
                four.append(play(str(releases), {**base, "switchyard_version": "v2"}))
                rollbacks.append(play(str(ROOT / "playbooks" / "rollback.yml"), base))
                rollbacks.append(play(str(ROOT / "playbooks" / "rollback.yml"), base))
                one.append(
                    play(
                        str(releases),
                        {**base, "switchyard_version": "v1", "switchyard_canary_steps": [100]},
                    )
                )
            floor = statistics.median(floors)
            report("ansible-playbook, one debug task (floor)", floors, floor)
            report("rollback.yml", rollbacks, floor)
            report("release.yml, windows 0, steps 10/25/50/100", four, floor)
            report("release.yml, windows 0, one step (100)", one, floor)
            per_step = (statistics.median(four) - statistics.median(one)) / 3
            print(f"one canary step without its window: {per_step:.2f} s")
        finally:
            down(state)


if __name__ == "__main__":
    main()
