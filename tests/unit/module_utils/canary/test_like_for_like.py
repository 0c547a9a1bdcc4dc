"""The judge compares like with like: real traffic is split by weight, synthetic requests go equally to each
color, so at a 10 % step a mixed canary sample is mostly synthetic and the baseline's mostly real. Samples
are read from HAProxy log lines in the lb role's format (the recorded fixture's), the marker in the request."""

from __future__ import annotations

from types import SimpleNamespace

from support.recorded import HAPROXY

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge
from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import CanaryGate, counted
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_lines

LIMITS = {
    "max_error_rate": 0.05,
    "max_error_rate_increase": 0.0,
    "max_p95_ms": 2000,
    "max_p99_ms": None,
    "max_latency_ratio": 1.5,
    "latency_tolerance_ms": 5,
    "min_requests": 100,
    "min_samples": 50,
    "confidence": 0.95,
}


def line(server: str, status: int, ms: int, target: str) -> str:
    # The recorded format (tests/unit/fixtures/haproxy-2.6.12/request-log.txt): %t %ci %b/%s %ST %Tr %Ta %B %{+Q}r
    return f'26/Nov/2026:15:20:01.101 192.168.64.1 be_api/{server} {status} {ms - 1} {ms} 203 "GET {target} HTTP/1.1"'


def samples(lines: list) -> dict:
    """The gate's per-role sample (judge_route) of the lines."""
    servers = parse_lines(lines, "be_api")
    return {
        role: {**counted(server), "real": counted(server.real), "synthetic": counted(server.synthetic)}
        for role, server in (("baseline", servers.get("api_blue")), ("canary", servers.get("api_green")))
    }


def traffic(real_canary: int, real_baseline: int, real_ms: dict, synthetic_ms: int, real_status: dict = None):
    """A window: real requests split by weight, 120 synthetic `GET /` to each color."""
    status = real_status or {}
    lines = []
    for server, count in (("api_green", real_canary), ("api_blue", real_baseline)):
        lines += [line(server, status.get(server, 200), real_ms[server], "/orders?page=2")] * count
        lines += [line(server, 200, synthetic_ms, "/?switchyard-synthetic=1")] * 120
    return samples(lines)


def by_metric(metrics: list) -> dict:
    return {m["metric"]: m for m in metrics}


def test_a_recorded_haproxy_log_tells_synthetic_requests_apart() -> None:
    """Lines HAProxy 2.6.12 wrote in the lb role's format while the gate sent its synthetic requests."""
    servers = parse_lines((HAPROXY / "request-log-synthetic.txt").read_text().splitlines(), "be_api")
    blue, green = servers["api_blue"], servers["api_green"]
    assert (blue.real.requests, blue.synthetic.requests) == (2, 1)
    assert (green.real.requests, green.synthetic.requests) == (1, 2) and green.requests == 3
    assert green.synthetic.latencies_ms == [0, 0] and blue.real.latencies_ms == [0, 1]


def test_the_parser_tells_marked_requests_apart() -> None:
    servers = parse_lines(
        [
            line("api_green", 200, 3, "/?switchyard-synthetic=1"),
            line("api_green", 500, 9, "/orders?a=1&switchyard-synthetic=1"),
            line("api_green", 200, 4, "/orders?switchyard-synthetic=10"),  # not the marker
            line("api_green", 200, 5, "/switchyard-synthetic=1"),  # not in the query
            line("api_green", 200, 2, "https://x/?switchyard-synthetic=1").replace("HTTP/1.1", "HTTP/2.0"),
            "26/Nov/2026:15:20:01.101 192.168.64.1 be_api/api_green 200 1 2 203",  # a format without %r: real
        ],
        "be_api",
    )
    green = servers["api_green"]
    assert green.requests == 6 and green.synthetic.statuses == [200, 500, 200] and green.synthetic.errors == 1
    assert green.real.latencies_ms == [4, 5, 2] and green.synthetic.latencies_ms == [3, 9, 2]


def test_enough_real_requests_on_both_colors_compares_real_requests_only() -> None:
    """A slow canary (400 ms on /orders) is caught although its sample is mostly fast synthetic `GET /`."""
    sample = traffic(110, 990, {"api_green": 400, "api_blue": 100}, 5)
    metrics = by_metric(judge.compare(sample["canary"], sample["baseline"], LIMITS, "lb"))
    assert {m["sample"] for m in metrics.values()} == {"real"}
    assert metrics["latency_ratio"]["canary"] == 400 and metrics["latency_ratio"]["baseline"] == 100
    assert metrics["latency_ratio"]["canary_n"] == 110 and metrics["latency_ratio"]["status"] == "fail"
    # The error rate too is over the real requests only.
    assert metrics["error_rate"]["canary_n"] == 110 and metrics["error_rate"]["baseline_n"] == 990


def test_too_few_real_requests_compares_synthetic_with_synthetic() -> None:
    """A healthy canary (100 ms like the baseline) with a slow `/` (300 ms on both): mixed, its sample is
    mostly slow synthetic and the baseline's mostly real - a rollback; like for like it passes."""
    sample = traffic(20, 3000, {"api_green": 100, "api_blue": 100}, 300)
    mixed = by_metric(
        judge.compare(
            {k: sample["canary"][k] for k in ("requests", "errors", "latencies_ms")},
            {k: sample["baseline"][k] for k in ("requests", "errors", "latencies_ms")},
            LIMITS,
            "lb",
        )
    )
    assert mixed["latency_ratio"]["status"] == "fail" and "sample" not in mixed["latency_ratio"]
    metrics = judge.compare(sample["canary"], sample["baseline"], LIMITS, "lb")
    assert {m["sample"] for m in metrics} == {"synthetic"} and judge.verdict(metrics) == "promote"
    ratio = by_metric(metrics)["latency_ratio"]
    assert ratio["canary_n"] == ratio["baseline_n"] == 120 and ratio["canary"] == ratio["baseline"] == 300
    assert "20 canary and 3000 baseline real requests, too few" in by_metric(metrics)["error_rate"]["reason"]


def test_real_errors_are_judged_on_real_requests() -> None:
    """Failing real requests on the canary (all 500) are not diluted by its healthy synthetic ones."""
    sample = traffic(150, 1350, {"api_green": 50, "api_blue": 50}, 5, {"api_green": 500})
    metrics = by_metric(judge.compare(sample["canary"], sample["baseline"], LIMITS, "lb"))
    assert metrics["error_rate"]["sample"] == "real" and metrics["error_rate"]["canary"] == 1.0
    assert metrics["error_rate"]["status"] == "fail"


def test_no_synthetic_requests_and_too_few_real_ones_is_inconclusive() -> None:
    sample = samples([line("api_green", 200, 5, "/")] * 3 + [line("api_blue", 200, 5, "/")] * 30)
    metrics = judge.compare(sample["canary"], sample["baseline"], LIMITS, "lb")
    assert {m["sample"] for m in metrics} == {"real"} and judge.verdict(metrics) == "hold"


def test_counters_alone_say_no_sample() -> None:
    """Counters cannot tell synthetic from real: no `sample` is claimed."""
    metrics = judge.compare(
        {"requests": 300, "errors": 0, "latencies_ms": None},
        {"requests": 300, "errors": 0, "latencies_ms": None},
        LIMITS,
        "haproxy_stats",
    )
    assert metrics and all("sample" not in m for m in metrics)


class Module:
    def __init__(self) -> None:
        self.warnings: list = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def test_a_log_without_the_request_line_is_warned_of_once() -> None:
    """Synthetic requests answered but none marked in the log: its format lacks %r (warned once per run)."""
    gate = SimpleNamespace(module=Module(), unmarked_warned=False)
    synthetic = {role: {"sent": 30, "answered": 30, "failed": 0} for role in ("baseline", "canary")}
    unmarked = {role: {"real_requests": 60, "synthetic_requests": 0} for role in ("baseline", "canary")}
    marked = {role: {"real_requests": 30, "synthetic_requests": 30} for role in ("baseline", "canary")}
    CanaryGate.check_marked(gate, marked, synthetic)
    assert gate.module.warnings == []
    no_log = {role: {"real_requests": None, "synthetic_requests": None} for role in ("baseline", "canary")}
    CanaryGate.check_marked(gate, no_log, synthetic)
    assert gate.module.warnings == [], "no request log (probes' own answers): nothing to mark"
    CanaryGate.check_marked(gate, unmarked, synthetic)
    CanaryGate.check_marked(gate, unmarked, synthetic)
    assert len(gate.module.warnings) == 1 and "%{+Q}r" in gate.module.warnings[0]


def test_after_a_blue_green_switch_the_candidate_s_real_requests_meet_the_absolute_limits() -> None:
    """100 % on green: blue (warm) has synthetic requests only, so the comparison is synthetic against
    synthetic - and green's real requests, failing on a path the synthetic ones never take, still fail the gate."""
    failing = traffic(400, 0, {"api_green": 4, "api_blue": 4}, 3, real_status={"api_green": 500})
    metrics = by_metric(judge.compare(failing["canary"], failing["baseline"], LIMITS, "lb"))
    assert metrics["error_rate"]["sample"] == "synthetic" and metrics["error_rate"]["status"] == judge.PASS
    assert metrics["real_error_rate"]["status"] == judge.FAIL and metrics["real_error_rate"]["canary_n"] == 400
    assert (
        "canary's real requests: error rate 100.00% (400/400) above the limit 5.00%"
        in (metrics["real_error_rate"]["reason"])
    )
    assert judge.verdict(list(metrics.values())) == "rollback"
    # Slow real requests fail max_p95_ms the same way.
    slow = traffic(400, 0, {"api_green": 2500, "api_blue": 4}, 3)
    metrics = by_metric(judge.compare(slow["canary"], slow["baseline"], LIMITS, "lb"))
    assert metrics["real_p95_ms"]["status"] == judge.FAIL and metrics["real_error_rate"]["status"] == judge.PASS
    # Healthy: both pass; too few real requests adds nothing (the synthetic comparison stands).
    good = traffic(400, 0, {"api_green": 4, "api_blue": 4}, 3)
    metrics = by_metric(judge.compare(good["canary"], good["baseline"], LIMITS, "lb"))
    assert judge.verdict(list(metrics.values())) == "promote" and metrics["real_p95_ms"]["status"] == judge.PASS
    quiet = traffic(20, 0, {"api_green": 4, "api_blue": 4}, 3, real_status={"api_green": 500})
    assert "real_error_rate" not in by_metric(judge.compare(quiet["canary"], quiet["baseline"], LIMITS, "lb"))


def test_real_against_real_adds_no_absolute_re_check() -> None:
    both = traffic(400, 400, {"api_green": 4, "api_blue": 4}, 3)
    metrics = by_metric(judge.compare(both["canary"], both["baseline"], LIMITS, "lb"))
    assert metrics["error_rate"]["sample"] == "real" and "real_error_rate" not in metrics
