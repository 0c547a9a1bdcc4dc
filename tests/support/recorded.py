"""Output recorded from the real tools of the testbed, for the parsers' unit tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
HAPROXY = FIXTURES / "haproxy-2.6.12"
DOCKER = FIXTURES / "docker-26.1.5-compose-2.26.1"
COSIGN = FIXTURES / "cosign-2.5.0"
PROMETHEUS = FIXTURES / "prometheus-2.42.0"
# canary_gate's results on two LB stacks standing for two hosts of a fleet (support/record_gate_results.py).
FLEET_GATE = FIXTURES / "canary_gate-fleet"
