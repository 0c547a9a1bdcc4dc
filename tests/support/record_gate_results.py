"""Record real canary_gate results of two hosts of a fleet (two LB stacks on the testbed) for fleet_gate's unit tests
(tests/unit/fixtures/canary_gate-fleet/, its README says what each is). Run it under the testbed's lock:

    flock /tmp/switchyard-testbed.lock env PYTHONPATH=tests .venv/bin/python -m support.record_gate_results
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from support.compose import unique_name
from support.fleet_gates import fault, gates
from support.recorded import FLEET_GATE
from support.stack import Stack, shift
from support.testbed import Testbed

# The thresholds of each scenario: fleet_gate's unit tests judge the pool with the same.
BUSY = {"min_requests": 100, "min_samples": 50, "max_p95_ms": 200}
QUIET = {"min_requests": 60, "min_samples": 50, "max_p95_ms": 200}


def save(name: str, results: dict[str, dict]) -> None:
    for host, result in results.items():
        path = FLEET_GATE / f"{name}-{host}.json"
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"{path.name}: {result['verdict']} - {result['reason']}", file=sys.stderr)


def main() -> None:
    testbed = Testbed.load()
    FLEET_GATE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stacks = {host: Stack(testbed, Path(tmp) / host, unique_name(f"fleet{host}")) for host in ("host-a", "host-b")}
        try:
            for stack in stacks.values():
                stack.up()
                shift(stack, 128, 128)
            save("busy-good", gates(stacks, rate=100, **BUSY))
            fault(stacks["host-b"], DEMO_FAIL_RATE="0.2")
            save("busy-bad", {"host-b": gates({"host-b": stacks["host-b"]}, rate=100, **BUSY)["host-b"]})
            bad = gates({"host-b": stacks["host-b"]}, rate=100, **{**BUSY, "fail_on": "rollback"})
            save("busy-bad-failed", bad)
            fault(stacks["host-b"])
            save("quiet-good", gates(stacks, rate=12, **QUIET))
            for stack in stacks.values():
                fault(stack, DEMO_EXTRA_LATENCY_MS="300")
            save("quiet-slow", gates(stacks, rate=12, **QUIET))
        finally:
            for stack in stacks.values():
                stack.down()


if __name__ == "__main__":
    main()
