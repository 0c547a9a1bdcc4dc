"""Several applications' LB stacks on the testbed standing for the hosts of a fleet: load on each and canary_gate run
on each at the same time (as Ansible's linear strategy runs one task on every host of a batch), then fleet_gate."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from support.load import Load
from support.modules import run_module
from support.stack import Stack


def gate_args(stack: Stack, window: float, **extra) -> dict:
    """canary_gate as the canary role runs it: the lb source (colors), one route."""
    return {
        "baseline": "blue",
        "canary": "green",
        "window": window,
        "sources": {"lb": {"dir": str(stack.lb_dir), "container": stack.lb_container, "route": "api"}},
        "fail_on": "never",
        **extra,
    }


def gate_under_load(stack: Stack, rate: float, window: float, connections: int = 4, **extra) -> dict:
    load = Load(stack.url + "/", rate=rate, seconds=window + 2, connections=connections).start()
    time.sleep(0.5)
    try:
        return run_module("canary_gate", gate_args(stack, window, **extra), timeout=120)
    finally:
        load.join()


def gates(stacks: dict[str, Stack], rate: float, window: float = 6, **extra) -> dict[str, dict]:
    """{host: its canary_gate result}, every host's load and gate at the same time."""
    with ThreadPoolExecutor(len(stacks)) as pool:
        futures = {host: pool.submit(gate_under_load, stack, rate, window, **extra) for host, stack in stacks.items()}
        return {host: future.result() for host, future in futures.items()}


def fault(stack: Stack, **env: str) -> None:
    """Green redeployed with the demo app's fault injection (no env: healthy again), UP before returning."""
    stack.deploy("green", "v2", **env)
    stack.wait_status({"api_green": "UP"}, seconds=60)
