"""The synthetic requests (against a real local http.server on 127.0.0.1, which answers by the canary header
like the LB would route it) and the per-color figures the gate keeps."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from support.compose import free_port

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge
from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import evidence
from ansible_collections.switchyard.release.plugins.module_utils.canary.synthetic import (
    SyntheticProbes,
    marked,
    schedule,
)


class ByColor(http.server.BaseHTTPRequestHandler):
    """200 for blue, 500 for green; records each request's arrival time, color and extra header."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        color = self.headers.get("X-Canary")
        self.server.seen.append((time.monotonic(), color, self.path, self.headers.get("X-Extra")))
        if color == "slow":
            time.sleep(0.6)
        self.send_response(500 if color == "green" else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), ByColor)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_schedule_spreads_requests_evenly_over_the_window() -> None:
    assert schedule(5, 2) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9])
    assert schedule(0.1, 2) == [1.0], "a positive rate sends at least one request"
    assert schedule(0, 10) == [] and schedule(5, 0) == []


def test_both_colors_are_probed_over_the_window_and_counted(server) -> None:
    began = time.monotonic()
    probes = SyntheticProbes(
        {"url": url(server), "path": "/orders", "rate": 10, "headers": {"X-Extra": "1"}},
        {"baseline": "blue", "canary": "green"},
    ).start(1.0)
    time.sleep(1.0)
    counts = probes.stop()
    assert counts["baseline"]["sent"] == 10 and counts["baseline"]["answered"] == 10
    assert counts["baseline"]["failed"] == 0 and counts["baseline"]["statuses"] == [200] * 10
    # Answered, but not with expect_status: failed.
    assert counts["canary"] == {**counts["canary"], "sent": 10, "answered": 10, "failed": 10}
    assert len(counts["canary"]["latencies_ms"]) == 10
    # Marked, so the LB's log tells them from real traffic.
    path = "/orders?switchyard-synthetic=1"
    assert {(c, p, x) for _t, c, p, x in server.seen} == {("blue", path, "1"), ("green", path, "1")}
    offsets = sorted(t - began for t, c, _p, _x in server.seen if c == "blue")
    assert offsets[0] < 0.2 and offsets[-1] > 0.8, f"spread over the window, not sent at once: {offsets}"


def test_no_request_starts_after_the_window_and_the_last_one_has_its_whole_timeout(server) -> None:
    """A slow service (600 ms) is not failed for the window's end: the last request, started 150 ms before it,
    gets the configured timeout and stop() waits for its answer; none starts after the end."""
    began = time.monotonic()
    probes = SyntheticProbes(
        {"url": url(server), "rate": 2, "timeout": 5}, {"baseline": "blue", "canary": "slow"}
    ).start(1.0)
    time.sleep(1.0)
    counts = probes.stop()
    assert time.monotonic() - began < 2
    assert counts["canary"] == {**counts["canary"], "sent": 2, "answered": 2, "failed": 0}
    assert min(counts["canary"]["latencies_ms"]) >= 600
    assert counts["baseline"] == {**counts["baseline"], "sent": 2, "answered": 2, "failed": 0}
    assert all(t - began <= 1.05 for t, _c, _p, _x in server.seen), "no request after the window's end"


def test_stop_waits_no_longer_than_the_timeout_and_no_answer_counts_as_failed(server) -> None:
    began = time.monotonic()
    probes = SyntheticProbes(
        {"url": url(server), "rate": 2, "timeout": 0.3}, {"baseline": "blue", "canary": "slow"}
    ).start(0.5)
    time.sleep(0.5)
    counts = probes.stop()
    assert time.monotonic() - began < 1.0, "the window's end is bounded by the timeout"
    assert counts["canary"] == {**counts["canary"], "sent": 1, "answered": 0, "failed": 1}


def test_the_marker_keeps_the_query_of_the_path() -> None:
    assert marked("http://lb:8080/orders?page=2") == "http://lb:8080/orders?switchyard-synthetic=1&page=2"
    assert marked("http://lb:8080/") == "http://lb:8080/?switchyard-synthetic=1"


def test_an_unreachable_lb_sends_nothing_answered() -> None:
    closed = free_port()
    probes = SyntheticProbes({"url": f"http://127.0.0.1:{closed}", "rate": 4}, {"baseline": "blue", "canary": "green"})
    probes.start(0.5)
    time.sleep(0.5)
    counts = probes.stop()
    assert counts["canary"]["sent"] == 2 and counts["canary"]["answered"] == 0 and counts["canary"]["failed"] == 2
    assert counts["canary"]["latencies_ms"] == []


def test_stop_ends_the_window_early() -> None:
    """A gate cut short (an exception) stops its prober: nothing is sent after stop()."""
    probes = SyntheticProbes({"url": "http://127.0.0.1:9", "rate": 1}, {"baseline": "blue", "canary": "green"})
    probes.start(30)
    began = time.monotonic()
    counts = probes.stop()
    assert time.monotonic() - began < 1 and counts["canary"]["sent"] == 0


def test_figures_of_one_color() -> None:
    figures = judge.figures(200, 3, list(range(1, 101)) * 2, 40.0)
    assert figures == {
        "requests": 200,
        "errors": 3,
        "error_rate": 0.015,
        "p50_ms": 50,
        "p95_ms": 95,
        "p99_ms": 99,
        "throughput_rps": 5.0,
    }
    # Counters alone: no latency; no request: no rate (None, never 0).
    assert judge.figures(10, 0, None, 2)["p95_ms"] is None
    assert judge.figures(0, 0, [], 3) == {**judge.figures(0, 0, [], 3), "error_rate": None, "throughput_rps": 0.0}


def test_synthetic_share_of_the_sample() -> None:
    counts = {"sent": 30, "answered": 29, "failed": 1}
    assert judge.synthetic_figures(counts, 58) == {
        "synthetic_sent": 30,
        "synthetic_answered": 29,
        "synthetic_failed": 1,
        "synthetic_share": 0.5,
    }
    # The LB's log may miss a request at the window's edge: the share never goes above 1.
    assert judge.synthetic_figures(counts, 20)["synthetic_share"] == 1.0
    assert judge.synthetic_figures(None, 0) == {
        "synthetic_sent": 0,
        "synthetic_answered": 0,
        "synthetic_failed": 0,
        "synthetic_share": None,
    }


def test_the_evidence_keeps_every_number_and_no_sample() -> None:
    """What the ledger keeps: every scalar of every metric, a limit's min and max, the figures per color and per
    route - and no list (log error examples, series)."""
    figures = {"baseline": {"name": "blue", "requests": 30}, "canary": {"name": "green", "requests": 29, "x": [1]}}
    metric = {"metric": "q", "status": "pass", "reason": "r", "canary": 0.1, "limit": {"min": None, "max": 1.0}}
    result = {
        "verdict": "promote",
        "reason": "all 1 measurement(s) passed",
        "window": {"start": "a", "end": "b"},
        "routes": [{"route": "api", "verdict": "promote", "not_passed": [], "figures": figures}],
        "metrics": [{**metric, "examples": ["Traceback ..."]}],
        "figures": figures,
        "measurements": [
            {"start": "a", "end": "b", "verdict": "promote", "metrics": [metric], "figures": figures, "counts": {}}
        ]
        * 70,
    }
    kept = evidence(result)
    assert kept["metrics"] == [metric]
    assert kept["figures"]["canary"] == {"name": "green", "requests": 29}
    assert kept["routes"] == [{"route": "api", "verdict": "promote", "not_passed": []}]
    assert kept["route_figures"]["api"]["baseline"] == {"name": "blue", "requests": 30}
    assert len(kept["measurements"]) == 60 and set(kept["measurements"][0]) == {"start", "end", "verdict", "figures"}
