"""canary_gate's Prometheus source against a real Prometheus (the testbed's, Debian's package) scraping the
real HAProxy exporter of a real LB (the lb role's switchyard_lb_metrics_port), every second, while real
traffic reaches a healthy color (blue) and one that answers 20 % of its requests with 500 (green).
The testbed's Prometheus requires basic authentication: the gate is given the credentials in the URL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from support.compose import free_port, unique_name
from support.load import Load
from support.modules import run_module
from support.prometheus import Scrape
from support.stack import Stack
from support.testbed import Testbed

RANGE = "5s"  # five scrapes


def error_ratio(app: str, server: str) -> str:
    """The server's share of 5xx answers over RANGE, from HAProxy's exporter (labels proxy, server, code)."""
    selector = f'app="{app}",proxy="be_api",server="{server}"'
    return (
        f'sum(rate(haproxy_server_http_responses_total{{{selector},code="5xx"}}[{RANGE}]))'
        f" / sum(rate(haproxy_server_http_responses_total{{{selector}}}[{RANGE}]))"
    )


def request_rate(app: str, server: str) -> str:
    return f'sum(rate(haproxy_server_http_responses_total{{app="{app}",proxy="be_api",server="{server}"}}[{RANGE}]))'


def queries(app: str, server: str) -> list[dict]:
    """What a release would ask about its candidate: few errors, and enough traffic to say so."""
    return [
        {"name": "error_ratio", "query": error_ratio(app, server), "max": 0.02},
        {"name": "request_rate", "query": request_rate(app, server), "min": 5},
    ]


def gate(url: str, candidate_queries: list[dict], window: float | str = 0.5) -> dict:
    return run_module(
        "canary_gate",
        {
            "baseline": "api_blue",
            "canary": "api_green",
            "window": window,
            "sources": {"prometheus": {"url": url, "timeout": 3, "queries": candidate_queries}},
            "fail_on": "never",
        },
        timeout=60,
    )


def by_name(result: dict) -> dict:
    return {m["metric"]: m for m in result["metrics"]}


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    built = Stack(testbed, tmp_path_factory.mktemp("stack"), unique_name("gprom"))
    try:
        yield built.up(DEMO_FAIL_RATE="0.2")
    finally:
        built.down()


@pytest.fixture(scope="module")
def scrape(testbed: Testbed, stack: Stack) -> Iterator[Scrape]:
    scraping = Scrape(testbed, stack).start()
    try:
        yield scraping
    finally:
        scraping.stop()


@pytest.fixture(scope="module")
def under_load(stack: Stack, scrape: Scrape) -> Iterator[Load]:
    """Both colors at the same weight under 100 requests/s, for as long as the module's gates take; the
    first gate runs once Prometheus has RANGE of scrapes with the failing color's 5xx in it."""
    result = run_module(
        "haproxy_weight",
        stack.weights(weights={"api_blue": 128, "api_green": 128}, states={"api_blue": "ready", "api_green": "ready"}),
    )
    assert not result.get("failed"), result.get("msg")
    load = Load(stack.url + "/", rate=100, seconds=20, connections=4).start()
    time.sleep(5.5)
    scrape.wait(f"{request_rate(stack.app, 'api_green')} > 5", seconds=10)
    try:
        yield load
    finally:
        load.stopping.set()
        load.join()


def test_the_exporter_is_not_on_the_public_port(stack: Stack) -> None:
    exported = requests.get(stack.metrics_url, timeout=5)
    assert exported.status_code == 200 and 'haproxy_server_http_responses_total{proxy="be_api"' in exported.text
    public = requests.get(stack.url + "/metrics", timeout=5)
    assert "haproxy_" not in public.text, "the public port must not serve HAProxy's metrics"


def test_a_candidate_answering_errors_fails_on_its_5xx_ratio(stack: Stack, scrape: Scrape, under_load) -> None:
    result = gate(scrape.url_with_credentials, queries(stack.app, "api_green"))
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "rollback", result["metrics"]
    ratio = by_name(result)["error_ratio"]
    assert ratio["status"] == "fail" and ratio["source"] == "prometheus", ratio
    assert 0.1 <= ratio["canary"] <= 0.3, ratio  # DEMO_FAIL_RATE=0.2, as HAProxy counted and Prometheus rated it


def test_a_healthy_candidate_under_the_same_traffic_passes(stack: Stack, scrape: Scrape, under_load) -> None:
    result = gate(scrape.url_with_credentials, queries(stack.app, "api_blue"))
    assert result["verdict"] == "promote", result["metrics"]
    metrics = by_name(result)
    assert metrics["error_ratio"]["canary"] == 0 and metrics["request_rate"]["canary"] >= 5, result["metrics"]


def test_no_series_is_inconclusive_never_a_pass(stack: Stack, scrape: Scrape) -> None:
    """A server HAProxy does not have (a typo in a label) returns no series: the gate holds."""
    result = gate(scrape.url_with_credentials, queries(stack.app, "api_grene"))
    assert result["verdict"] == "hold", result["metrics"]
    assert {m["status"] for m in result["metrics"]} == {"inconclusive"}, result["metrics"]
    assert "no series" in by_name(result)["request_rate"]["reason"]


def test_prometheus_unreachable_is_inconclusive(stack: Stack) -> None:
    result = gate(f"http://127.0.0.1:{free_port()}", queries(stack.app, "api_blue"))
    assert result["verdict"] == "hold", result["metrics"]
    assert all(m["status"] == "inconclusive" and "Prometheus query failed" in m["reason"] for m in result["metrics"]), (
        result["metrics"]
    )


def test_credentials_in_the_url_are_sent_and_never_shown(stack: Stack, scrape: Scrape, under_load) -> None:
    """The verdicts above needed the password (Prometheus answers 401 without it: inconclusive); the
    password is nowhere in what the module returns - echoed arguments, metrics, message - also when Ansible
    refuses the arguments before the module runs (the URL is no_log)."""
    user, password = scrape.auth
    host = scrape.url.removeprefix("http://")
    without = gate(scrape.url, queries(stack.app, "api_green"))
    assert without["verdict"] == "hold", without["metrics"]
    assert all("401" in m["reason"] for m in without["metrics"]), without["metrics"]
    wrong = gate(f"http://{user}:not-{password}@{host}", queries(stack.app, "api_green"))
    assert wrong["verdict"] == "hold" and "401" in wrong["metrics"][0]["reason"], wrong["metrics"]
    assert f"not-{password}" not in json.dumps(wrong)
    judged = gate(scrape.url_with_credentials, queries(stack.app, "api_green"))
    assert judged["verdict"] == "rollback", judged["metrics"]
    assert judged["invocation"]["module_args"]["sources"]["prometheus"]["url"] == f"http://{user}:****@{host}"
    refused = gate(scrape.url_with_credentials, queries(stack.app, "api_green"), window="notanumber")
    assert refused["failed"] and "window" in refused["msg"]
    for result in (without, wrong, judged, refused):
        assert password not in json.dumps(result), result
