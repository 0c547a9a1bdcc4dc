"""canary_gate's HTTP probe source and its credentials, against a local target behind a bearer token.
The Prometheus source (its queries, and the credentials in its URL) is tested against the testbed's real
Prometheus in tests/integration/test_gate_prometheus.py; the HAProxy source and the probes through a real LB
in tests/integration/test_canary_gate.py."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

from support.compose import free_port
from support.leaks import occurrences
from support.modules import run_module


class ProbeBehindCredentials(http.server.BaseHTTPRequestHandler):
    """A probe target behind a bearer token: it answers only to the server's token, so a verdict of promote
    proves it was sent."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        given = self.headers.get("Authorization")
        expected = f"Bearer {self.server.token}"
        data = json.dumps({}).encode()
        self.send_response(200 if given == expected else 401)
        if given != expected:
            self.send_header("WWW-Authenticate", 'Bearer realm="probe"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_probe_credentials_and_url_userinfo_are_never_shown() -> None:
    """An Authorization header of the probe is sent (the target answers only to it); it and the password of a
    probe URL appear 0 times in the result - echoed arguments, metrics, error message - also when the gate fails
    on an unreachable target, and, with a Prometheus URL's password, when Ansible refuses the arguments (a
    `window` that is not a number) before the module runs: the URLs are no_log, so the invocation Ansible
    echoes then hides them whole. A header that is no credential (X-Canary: green) is not masked elsewhere:
    `green` stays readable."""
    token, password = f"tok-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), ProbeBehindCredentials)
    server.token = token
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def sources(port: int, prometheus: bool = False) -> dict:
        # A Prometheus that is never queried: only where Ansible refuses the arguments before the module runs.
        listed = {"prometheus": {"url": f"http://promuser:{password}@127.0.0.1:{port}", "queries": []}}
        return {
            **(listed if prometheus else {}),
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
    assert shown["sources"]["http_probe"]["url"] == f"http://probe:****@127.0.0.1:{port}/"
    assert set(shown["sources"]["http_probe"]["headers"].values()) == {"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    assert shown["canary"] == "api_green"  # X-Canary's value is not masked elsewhere

    closed = free_port()
    failed = run_module("canary_gate", {**args, "sources": sources(closed)})
    assert failed["failed"] and failed["msg"].startswith("canary gate: rollback - http_probe: 0/3 probes answered")
    refused = run_module("canary_gate", {**args, "window": "notanumber", "sources": sources(port, prometheus=True)})
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
