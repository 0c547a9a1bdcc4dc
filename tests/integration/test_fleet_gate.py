"""switchyard.release.fleet_gate over two real HAProxy LB stacks standing for two hosts of a fleet: load on both,
canary_gate run on each at the same time, then one verdict for the fleet - promote when both canaries are good, a
rollback naming the host whose canary errs (the demo app's DEMO_FAIL_RATE)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.compose import unique_name
from support.fleet_gates import fault, gates
from support.modules import run_module
from support.stack import Stack, shift
from support.testbed import Testbed

THRESHOLDS = {"min_requests": 100, "min_samples": 50, "max_p95_ms": 200}


@pytest.fixture(scope="module")
def fleet(testbed: Testbed, tmp_path_factory) -> Iterator[dict[str, Stack]]:
    stacks = {
        host: Stack(testbed, tmp_path_factory.mktemp(host), unique_name(f"fleet{host}")) for host in ("web1", "web2")
    }
    try:
        with ThreadPoolExecutor(len(stacks)) as pool:
            for future in [pool.submit(stack.up) for stack in stacks.values()]:
                future.result()
        for stack in stacks.values():
            shift(stack, 128, 128)
        yield stacks
    finally:
        for stack in stacks.values():
            stack.down()


def fleet_gate(observations: dict[str, dict], **extra) -> dict:
    return run_module(
        "fleet_gate", {"observations": observations, "hosts": sorted(observations), **THRESHOLDS, **extra}
    )


def test_both_hosts_good_promote(fleet: dict[str, Stack]) -> None:
    observations = gates(fleet, rate=100, **THRESHOLDS)
    assert {host: r["verdict"] for host, r in observations.items()} == {"web1": "promote", "web2": "promote"}
    result = fleet_gate(observations)
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "promote" and result["changed"] is False, result["reason"]
    assert result["hosts"] == {"web1": "promote", "web2": "promote"}
    error_rate = next(m for m in result["metrics"] if m["metric"] == "error_rate")
    assert error_rate["hosts"] == 2
    assert error_rate["canary_n"] == sum(r["figures"]["canary"]["requests"] for r in observations.values())


def test_a_host_whose_canary_errs_rolls_the_fleet_back_naming_it(fleet: dict[str, Stack]) -> None:
    fault(fleet["web2"], DEMO_FAIL_RATE="0.2")
    try:
        observations = gates(fleet, rate=100, **THRESHOLDS)
    finally:
        fault(fleet["web2"])
    assert observations["web2"]["verdict"] == "rollback" and observations["web1"]["verdict"] == "promote"
    result = fleet_gate(observations)
    assert result["failed"] and result["verdict"] == "rollback"
    assert result["msg"].startswith("fleet gate: rollback - host: web2 rolled back on its own - route api: error_rate")
    assert "web1 rolled back" not in result["msg"]
    assert result["hosts"] == {"web1": "promote", "web2": "rollback"}
    assert result["evidence"]["hosts"]["web2"]["counted_as"] == "rollback"
