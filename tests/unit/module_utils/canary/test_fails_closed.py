"""The gate fails closed: a NaN, no data, a comparison it could not make are inconclusive (hold), never a
pass; with several routes the verdict is the worst of them, and the evidence says which route gave it.

The Prometheus answers are the JSON bodies of /api/v1/query recorded from the testbed's Prometheus 2.42."""

from __future__ import annotations

import json
import re

import pytest
from support.recorded import PROMETHEUS

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge
from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import (
    GateError,
    lb_routes,
    prometheus_metric,
    prometheus_series,
    validate_static,
)

LIMITS = {
    "max_error_rate": 0.01,
    "max_error_rate_increase": 0.0,
    "max_p95_ms": 500,
    "max_p99_ms": None,
    "max_latency_ratio": 1.5,
    "latency_tolerance_ms": 5,
    "min_requests": 100,
    "min_samples": 20,
    "confidence": 0.95,
}
QUERY = {"name": "error_ratio", "query": "sum(rate(http_errors[1m])) / sum(rate(http_requests[1m]))", "max": 0.01}

# Answers of the testbed's Prometheus 2.42 (Debian 12) to /api/v1/query, as it wrote them: the queries that
# produced them are in tests/unit/fixtures/prometheus-2.42.0/README.md. 0/0 in PromQL (no requests in the
# range) is NaN, given as a string.
NAN_VECTOR, EMPTY_VECTOR, GOOD_VECTOR, TWO_SERIES, ONE_NAN_OF_TWO, SCALAR, INF_SCALAR, MATRIX, ERROR = (
    (PROMETHEUS / f"{name}.json").read_text()
    for name in (
        "nan-vector",
        "empty-vector",
        "good-vector",
        "two-series",
        "one-nan-of-two",
        "scalar",
        "inf-scalar",
        "matrix",
        "error",
    )
)
# HAProxy's exporter scraped every second under load: per server of be_api, the share of 5xx answers over 5 s
# (api_green answers 20 % of its requests with 500, api_blue none).
HAPROXY_5XX_BY_SERVER = (PROMETHEUS / "haproxy-5xx-ratio-by-server.json").read_text()


@pytest.mark.parametrize(
    ("answer", "status", "said"),
    [
        (NAN_VECTOR, "inconclusive", "could not be computed (NaN)"),
        (EMPTY_VECTOR, "inconclusive", "no data"),
        (ERROR, "inconclusive", "status 'error': invalid parameter"),
        (MATRIX, "inconclusive", "matrix result"),
        (ONE_NAN_OF_TWO, "inconclusive", "the worst of 2"),
        (GOOD_VECTOR, "pass", "error_ratio = 0.002"),
        (TWO_SERIES, "fail", "above 0.01 (series {'route': 'web'}, the worst of 2)"),
        (HAPROXY_5XX_BY_SERVER, "fail", "(series {'server': 'api_green'}, the worst of 2)"),
    ],
)
def test_prometheus_answers(answer: str, status: str, said: str) -> None:
    metric = prometheus_metric(QUERY, json.loads(answer))
    assert metric["status"] == status and said in metric["reason"], metric
    assert metric["metric"] == "error_ratio" and metric["source"] == "prometheus"


def test_a_nan_is_never_a_pass_whatever_the_limits() -> None:
    """NaN > max and NaN < min are both False: compared as numbers, NaN would pass every limit."""
    for limits in ({"max": 0.01}, {"min": 0.5}, {"min": 0.0, "max": 1.0}, {}):
        metric = prometheus_metric({**QUERY, **limits, "max": limits.get("max")}, json.loads(NAN_VECTOR))
        assert metric["status"] == "inconclusive" and metric["canary"] is None, metric
    assert judge.verdict([metric]) == "hold"
    json.dumps(metric, allow_nan=False)  # the evidence stays valid JSON (the ledger keeps it)


def test_scalars_and_infinities() -> None:
    assert prometheus_series(json.loads(SCALAR)) == [({}, 0.5)]
    above = prometheus_metric(QUERY, json.loads(INF_SCALAR))
    assert above["status"] == "fail" and above["canary"] == "inf", above
    unbounded = prometheus_metric({**QUERY, "max": None, "min": 0.0}, json.loads(INF_SCALAR))
    assert unbounded["status"] == "inconclusive", unbounded


def test_no_request_is_no_data_even_with_min_requests_zero() -> None:
    metrics = judge.error_rates(
        {"requests": 0, "errors": 0}, {"requests": 500, "errors": 0}, {**LIMITS, "min_requests": 0}, "t"
    )
    assert [m["status"] for m in metrics] == ["inconclusive"] and judge.verdict(metrics) == "hold"
    assert judge.latencies([], [], {**LIMITS, "min_samples": 0}, "t")[0]["status"] == "inconclusive"


def test_a_latency_comparison_without_enough_baseline_samples_is_said_and_holds() -> None:
    """The canary has samples, the baseline too few: the ratio cannot be judged - an inconclusive metric
    with both sample counts, not a silent skip that lets the step promote."""
    metrics = judge.latencies([10] * 40, [10] * 5, LIMITS, "lb")
    ratio = {m["metric"]: m for m in metrics}["latency_ratio"]
    assert ratio["status"] == "inconclusive"
    assert (ratio["canary_n"], ratio["baseline_n"]) == (40, 5) and ratio["limit"] == 1.5
    assert "skipped" in ratio["reason"] and "baseline" in ratio["reason"] and "min_samples 20" in ratio["reason"]
    assert {m["metric"]: m["status"] for m in metrics}["p95_ms"] == "pass", "the canary's own limits still apply"
    assert judge.verdict(metrics) == "hold"
    slow = judge.latencies([900] * 40, [10] * 5, LIMITS, "lb")
    assert judge.verdict(slow) == "rollback", "a failing absolute limit still rolls back"
    without_ratio = judge.latencies([10] * 40, [10] * 5, {**LIMITS, "max_latency_ratio": None}, "lb")
    assert judge.verdict(without_ratio) == "promote", "no comparison asked, none missing"


def measurement(*metrics: dict) -> dict:
    return {"metrics": list(metrics), "verdict": judge.verdict(list(metrics))}


def m(route: str | None, name: str, status: str) -> dict:
    return {"metric": name, "status": status, "reason": f"{name} {status}", **({"route": route} if route else {})}


@pytest.mark.parametrize(
    ("statuses", "verdict", "first"),
    [
        ({"api": "pass", "web": "pass"}, "promote", "api"),
        ({"api": "pass", "web": "fail"}, "rollback", "web"),
        ({"api": "inconclusive", "web": "pass"}, "hold", "api"),
        ({"api": "inconclusive", "web": "fail"}, "rollback", "web"),
    ],
)
def test_the_verdict_is_the_worst_route(statuses: dict, verdict: str, first: str) -> None:
    measurements = [measurement(*(m(route, "error_rate", status) for route, status in statuses.items()))]
    overall, reason, routes = judge.combine_routes(measurements, list(statuses), 0, 0, "hold")
    assert overall == verdict
    assert routes[0]["route"] == first and reason.startswith(f"route {first}: {verdict}")
    assert {r["route"]: r["verdict"] for r in routes} == {
        r: {"pass": "promote", "fail": "rollback", "inconclusive": "hold"}[s] for r, s in statuses.items()
    }
    failing = {r["route"]: r["not_passed"] for r in routes}
    assert all(failing[r] == ([] if s == "pass" else ["error_rate"]) for r, s in statuses.items())


def test_a_route_with_no_metric_holds() -> None:
    overall, _reason, routes = judge.combine_routes(
        [measurement(m("api", "error_rate", "pass"))], ["api", "web"], 0, 0, "hold"
    )
    assert overall == "hold" and routes[0] == {
        "route": "web",
        "verdict": "hold",
        "reason": routes[0]["reason"],
        "not_passed": [],
    }


def test_metrics_of_no_route_count_for_every_route() -> None:
    """A failing probe (no route) fails every route; the limits apply per route as for a single route."""
    probe = [measurement(m("api", "error_rate", "pass"), m("web", "error_rate", "pass"), m(None, "http_probe", "fail"))]
    overall, _reason, routes = judge.combine_routes(probe, ["api", "web"], 0, 0, "hold")
    assert overall == "rollback" and {r["verdict"] for r in routes} == {"rollback"}
    # One failed measurement on each route, failure_limit 1: each route holds, so the step holds.
    spread = [
        measurement(m("api", "error_rate", "fail"), m("web", "error_rate", "pass")),
        measurement(m("api", "error_rate", "pass"), m("web", "error_rate", "fail")),
    ]
    assert judge.combine_routes(spread, ["api", "web"], 1, 0, "hold")[0] == "hold"
    assert judge.combine_routes(spread, ["api", "web"], 0, 0, "hold")[0] == "rollback"


def test_worst() -> None:
    assert judge.worst(["promote", "rollback", "hold"]) == "rollback"
    assert judge.worst(["promote", "hold"]) == "hold"
    assert judge.worst(["promote"]) == "promote"
    assert judge.worst([]) == "hold", "nothing judged is not a promote"


def params(**overrides) -> dict:
    base = {
        "window": 1.0,
        "count": 1,
        "confidence": 0.95,
        "baseline": "blue",
        "canary": "green",
        "sources": {"lb": {"dir": "/x", "route": None, "routes": ["api", "web"]}},
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({"lb": {"dir": "/x", "route": None, "routes": []}}, "give the route judged (route) or every route"),
        ({"lb": {"dir": "/x", "route": None, "routes": ["api", "api"]}}, "each route once"),
        ({"http_probe": {"url": "http://127.0.0.1:9/", "count": 0}}, "send at least one probe"),
    ],
)
def test_parameters_that_would_judge_nothing_are_refused(sources: dict, message: str) -> None:
    with pytest.raises(GateError, match=re.escape(message)):
        validate_static(params(sources=sources))


def test_lb_routes() -> None:
    assert lb_routes({"route": "api", "routes": None}) == ["api"]
    assert lb_routes({"route": None, "routes": ["api", "web"]}) == ["api", "web"]
    validate_static(params())
