"""Running the collection's modules for real, as Ansible does on a target: a Python process
that reads its arguments and prints its JSON result. No Ansible internals are replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from support.testbed import REPO_ROOT

COLLECTIONS = REPO_ROOT / "build" / "collections"


def run_module(name: str, args: dict, check: bool = False, diff: bool = True, timeout: float = 600) -> dict:
    """Run switchyard.release.<name> with args; return its result (with 'failed' when it failed)."""
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(payload, handle)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", f"ansible_collections.switchyard.release.plugins.modules.{name}", handle.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONPATH": str(COLLECTIONS)},
        )
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"module {name} printed no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        ) from exc
    if proc.returncode != 0:
        result.setdefault("failed", True)
    return result


def four_way(name: str, args: dict) -> list[dict]:
    """check, apply, check again, apply again: the results, in that order."""
    return [run_module(name, args, check=c) for c in (True, False, True, False)]
