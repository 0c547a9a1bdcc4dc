"""Running playbooks of this checkout with ansible-playbook on the local Docker host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.testbed import REPO_ROOT

PLAYBOOKS = REPO_ROOT / "tests" / "e2e" / "playbooks"


def local_inventory(directory: Path, allowed: tuple[str, ...] = ()) -> Path:
    """An inventory with localhost in docker_hosts, using this virtual environment's Python. allowed: variables
    the roles refuse as extra vars that a test of one role passes with -e (switchyard_extra_vars_allowed)."""
    inventory = directory / "hosts.yml"
    text = (
        "docker_hosts:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    if allowed:
        text += f"  vars:\n    switchyard_extra_vars_allowed: {json.dumps(list(allowed))}\n"
    inventory.write_text(text)
    return inventory


def run_playbook(playbook: Path, inventory: Path, extra: dict, *flags: str, check: bool = True):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(playbook),
            "-e",
            json.dumps(extra),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result
