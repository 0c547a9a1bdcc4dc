"""canary_gate's Prometheus source and its credentials, against Prometheus's HTTP API answers replayed by a
local server (Prometheus is not part of the testbed): the format is that of /api/v1/query, an instant vector.
The HAProxy source and the probes through a real LB are in tests/integration/test_canary_gate.py."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid

import pytest
from support.compose import free_port
from support.leaks import occurrences
from support.modules import run_module


class PrometheusAnswers(http.server.BaseHTTPRequestHandler):
    """A Prometheus-format /api/v1/query endpoint: the value comes from the server's `value`."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": (
                        [{"metric": {}, "value": [time.time(), str(self.server.value)]}]
                        if self.server.value is not None
                        else []
                    ),
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("value", "verdict"),
    [(0.002, "promote"), (0.2, "rollback"), (None, "hold"), ("NaN", "hold")],  # NaN: 0/0, no traffic
)
def test_prometheus_source(value, verdict: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), PrometheusAnswers)
    server.value = value
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_module(
            "canary_gate",
            {
                "baseline": "api_blue",
                "canary": "api_green",
                "window": 0.2,
                "fail_on": "never",
                "sources": {
                    "prometheus": {
                        "url": f"http://127.0.0.1:{server.server_address[1]}",
                        "queries": [{"name": "error_ratio", "query": "sum(rate(http_errors[1m]))", "max": 0.01}],
                    }
                },
            },
        )
    finally:
        server.shutdown()
    assert result["verdict"] == verdict, result["metrics"]
    assert result["metrics"][0]["metric"] == "error_ratio"
    assert result["changed"] is False


class PrometheusAndProbeBehindCredentials(http.server.BaseHTTPRequestHandler):
    """Prometheus behind basic authentication (/api/v1/query) and a probe target behind a bearer token (the
    rest): each answers only to the server's credentials, so a verdict of promote proves they were sent."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        given = self.headers.get("Authorization")
        if self.path.startswith("/api/v1/query"):
            expected = "Basic " + base64.b64encode(f"promuser:{self.server.password}".encode()).decode()
            series = [{"metric": {}, "value": [0, "0"]}]
            body = {"status": "success", "data": {"resultType": "vector", "result": series}}
        else:
            expected, body = f"Bearer {self.server.token}", {}
        data = json.dumps(body).encode()
        self.send_response(200 if given == expected else 401)
        if given != expected:
            self.send_header("WWW-Authenticate", 'Basic realm="prometheus"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_probe_credentials_and_url_userinfo_are_never_shown() -> None:
    """An Authorization header of the probe and the password in the Prometheus URL are sent (the server answers
    only to them) and appear 0 times in the result - echoed arguments, metrics, error message - also when the
    gate fails on unreachable sources (whose URLs carry credentials too), and when Ansible refuses the arguments
    (a `window` that is not a number) before the module runs: the URLs are no_log, so the invocation Ansible
    echoes then hides them whole. A header that is no credential (X-Canary: green) is not masked elsewhere:
    `green` stays readable."""
    token, password = f"tok-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), PrometheusAndProbeBehindCredentials)
    server.token, server.password = token, password
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def sources(port: int) -> dict:
        return {
            "prometheus": {
                "url": f"http://promuser:{password}@127.0.0.1:{port}",
                "queries": [{"name": "errors", "query": "sum(rate(http_errors[1m]))", "max": 0.01}],
            },
            "http_probe": {
                "url": f"http://probe:{token}@127.0.0.1:{port}/",
                "headers": {"Authorization": f"Bearer {token}", "X-Canary": "green"},
                "count": 3,
            },
        }

    args = {"baseline": "api_blue", "canary": "api_green", "window": 0.05}
    try:
        passed = run_module("canary_gate", {**args, "sources": sources(port)})
    finally:
        server.shutdown()
    assert passed["verdict"] == "promote", passed.get("msg") or passed["metrics"]
    shown = passed["invocation"]["module_args"]
    assert shown["sources"]["prometheus"]["url"] == f"http://promuser:****@127.0.0.1:{port}"
    assert shown["sources"]["http_probe"]["url"] == f"http://probe:****@127.0.0.1:{port}/"
    assert set(shown["sources"]["http_probe"]["headers"].values()) == {"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert shown["canary"] == "api_green"  # X-Canary's value is not masked elsewhere

    closed = free_port()
    failed = run_module("canary_gate", {**args, "sources": sources(closed)})
    assert failed["failed"] and failed["msg"].startswith("canary gate: rollback - http_probe: 0/3 probes answered")
    assert "Prometheus query failed: <urlopen error" in failed["metrics"][0]["reason"]
    refused = run_module("canary_gate", {**args, "window": "notanumber", "sources": sources(port)})
    assert refused["failed"] and "argument 'window' is of type str" in refused["msg"]
    refused_sources = refused["invocation"]["module_args"]["sources"]
    assert (
        refused_sources["prometheus"]["url"]
        == refused_sources["http_probe"]["url"]
        == ("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    )
    for secret in (token, password):
        assert occurrences(passed, secret) == 0 and occurrences(failed, secret) == 0
        assert occurrences(refused, secret) == 0
