"""The canary gate's log parser and statistics, checked against values computed independently."""

from __future__ import annotations

import math

import pytest
from support.recorded import HAPROXY

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_lines
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.stats import delta

LOG = HAPROXY / "request-log.txt"
LIMITS = {
    "max_error_rate": 0.01,
    "max_error_rate_increase": 0.0,
    "max_p95_ms": 500,
    "max_p99_ms": None,
    "max_latency_ratio": 1.5,
    "min_requests": 100,
    "min_samples": 5,
    "confidence": 0.95,
}


def test_log_lines_per_server() -> None:
    servers = parse_lines(LOG.read_text().splitlines(), "be_api")
    assert sorted(servers) == ["<NOSRV>", "api_blue", "api_green"]
    green = servers["api_green"]
    assert green.statuses == [200, 500, 504] and green.errors == 2
    assert green.latencies_ms == [3, 302], "a request without a server answer (%Tr -1) has no latency"
    assert servers["api_blue"].requests == 1


def hypergeometric_tail(errors_canary: int, n_canary: int, errors_baseline: int, n_baseline: int) -> float:
    """P(X >= errors_canary) for X ~ Hypergeometric: Fisher's one-sided p, computed by hand."""
    total, errors = n_canary + n_baseline, errors_canary + errors_baseline
    return sum(
        math.comb(errors, k) * math.comb(total - errors, n_canary - k) for k in range(errors_canary, errors + 1)
    ) / math.comb(total, n_canary)


@pytest.mark.parametrize(("k_c", "n_c", "k_b", "n_b"), [(5, 100, 0, 100), (3, 300, 2, 2700), (0, 300, 0, 300)])
def test_fisher_p_value_matches_the_hypergeometric_tail(k_c: int, n_c: int, k_b: int, n_b: int) -> None:
    metrics = judge.error_rates({"requests": n_c, "errors": k_c}, {"requests": n_b, "errors": k_b}, LIMITS, "t")
    increase = [m for m in metrics if m["metric"] == "error_rate_increase"][0]
    assert increase["p_value"] == pytest.approx(hypergeometric_tail(k_c, n_c, k_b, n_b), rel=1e-9)


def test_fisher_on_the_tea_tasting_table() -> None:
    """Fisher's own example: 3 of 4 right, one-sided p = 17/70."""
    metrics = judge.error_rates(
        {"requests": 4, "errors": 3}, {"requests": 4, "errors": 1}, {**LIMITS, "min_requests": 4}, "t"
    )
    assert metrics[-1]["p_value"] == pytest.approx(17 / 70)


def test_error_verdicts() -> None:
    bad = judge.error_rates({"requests": 300, "errors": 15}, {"requests": 2700, "errors": 3}, LIMITS, "t")
    assert {m["metric"]: m["status"] for m in bad} == {"error_rate": "fail", "error_rate_increase": "fail"}
    good = judge.error_rates({"requests": 300, "errors": 0}, {"requests": 2700, "errors": 1}, LIMITS, "t")
    assert judge.verdict(good) == "promote"
    few = judge.error_rates({"requests": 20, "errors": 20}, {"requests": 2700, "errors": 0}, LIMITS, "t")
    assert judge.verdict(few) == "hold", "too little data is never a rollback"


def test_mann_whitney_exact_p_value() -> None:
    """Five canary samples all above five baseline samples: exact one-sided p = 1 / C(10, 5)."""
    metrics = judge.latencies([60, 70, 80, 90, 100], [1, 2, 3, 4, 5], LIMITS, "t")
    ratio = [m for m in metrics if m["metric"] == "latency_ratio"][0]
    assert ratio["p_value"] == pytest.approx(1 / math.comb(10, 5))
    assert ratio["status"] == "fail"


def test_a_slower_canary_within_the_latency_tolerance_passes() -> None:
    """Whole-millisecond timings: 1 ms against 0 ms is an infinite ratio, not a slower service."""
    limits = {**LIMITS, "latency_tolerance_ms": 5}
    fast = judge.latencies([1] * 40, [0] * 40, limits, "t")
    ratio = [m for m in fast if m["metric"] == "latency_ratio"][0]
    assert ratio["p_value"] < 0.05 and ratio["status"] == "pass"
    slow = judge.latencies([9] * 40, [0] * 40, limits, "t")
    assert [m for m in slow if m["metric"] == "latency_ratio"][0]["status"] == "fail"


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert judge.percentile(values, 95) == 95 and judge.percentile(values, 99) == 99
    assert judge.percentile([7], 95) == 7 and judge.percentile([], 95) is None


def test_counter_reset_detection() -> None:
    start = {
        "pid": "8",
        "servers": {
            "a": {
                "req_tot": 10,
                "hrsp_5xx": 0,
                "econ": 0,
                "eresp": 0,
                "stot": 10,
                "status": "UP",
                "check_status": "L7OK",
                "rtime": 1,
            }
        },
    }
    same = {"pid": "8", "servers": {"a": {**start["servers"]["a"], "req_tot": 30, "hrsp_5xx": 2}}}
    counts, resets = delta(start, same)
    assert counts["a"]["requests"] == 20 and counts["a"]["errors"] == 2 and resets == []
    reloaded = {"pid": "12", "servers": {"a": {**start["servers"]["a"], "req_tot": 3, "stot": 3}}}
    _counts, resets = delta(start, reloaded)
    assert len(resets) == 2 and "reload" in resets[0]


@pytest.mark.parametrize(
    ("verdicts", "limits", "expected"),
    [
        (["promote", "promote"], (0, 0, "hold"), "promote"),
        (["promote", "rollback"], (0, 0, "hold"), "rollback"),
        (["promote", "rollback"], (1, 0, "hold"), "hold"),
        (["hold", "promote"], (0, 0, "hold"), "hold"),
        (["hold", "hold"], (0, 1, "rollback"), "rollback"),
        (["hold", "promote"], (0, 1, "rollback"), "hold"),
    ],
)
def test_combining_measurements(verdicts: list, limits: tuple, expected: str) -> None:
    verdict, _reason = judge.combine([{"verdict": v} for v in verdicts], *limits)
    assert verdict == expected
