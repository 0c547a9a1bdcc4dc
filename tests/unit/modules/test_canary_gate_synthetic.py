"""canary_gate with the synthetic source alone, against a real local http.server that answers by the canary
header: the synthetic answers are then the sample, judged and kept as per-color figures. Through a real LB
(whose log counts them) it is tests/e2e/test_gate_synthetic.py."""

from __future__ import annotations

import http.server
import threading

import pytest
from support.compose import free_port
from support.modules import run_module


class Colors(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        status = self.server.statuses.get(self.headers.get("X-Canary"), 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("green", "verdict"), [(200, "promote"), (500, "rollback")])
def test_synthetic_requests_alone_are_judged_and_counted(green: int, verdict: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Colors)
    server.statuses = {"blue": 200, "green": green}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_module(
            "canary_gate",
            {
                "baseline": "blue",
                "canary": "green",
                "window": 1,
                "fail_on": "never",
                "min_requests": 15,
                "min_samples": 15,
                "sources": {
                    "synthetic": {
                        "url": f"http://127.0.0.1:{server.server_address[1]}",
                        "rate": 20,
                        "headers": {"Authorization": "Bearer s3cr3t-token"},
                    }
                },
            },
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result["verdict"] == verdict, result
    metrics = {m["metric"]: m for m in result["metrics"]}
    figures = result["figures"]
    # 20 probes per color are scheduled over the 1 s window; one due so late that a loaded machine reaches it after
    # the window's end is not sent (no request starts after the window). Whatever was sent is counted exactly.
    sent = figures["canary"]["synthetic_sent"]
    assert 15 <= sent <= 20, figures
    assert metrics["error_rate"]["source"] == "synthetic" and metrics["error_rate"]["canary_n"] == sent
    assert figures["baseline"]["name"] == "blue" and figures["canary"]["name"] == "green"
    for side in ("baseline", "canary"):
        n = figures[side]["synthetic_sent"]
        assert 15 <= n <= 20 and figures[side]["synthetic_answered"] == n, figures[side]
        assert figures[side]["requests"] == n and figures[side]["synthetic_share"] == 1.0
        assert figures[side]["throughput_rps"] == pytest.approx(n, rel=0.1)
        assert figures[side]["p50_ms"] <= figures[side]["p95_ms"] <= figures[side]["p99_ms"]
    assert figures["canary"]["synthetic_failed"] == (sent if green == 500 else 0)
    assert figures["canary"]["error_rate"] == (1.0 if green == 500 else 0.0)
    assert result["measurements"][0]["figures"] == figures
    assert "s3cr3t-token" not in str(result), "the credential header is masked"


def test_a_rate_that_sends_nothing_is_refused() -> None:
    result = run_module(
        "canary_gate",
        {
            "baseline": "blue",
            "canary": "green",
            "window": 1,
            "sources": {"synthetic": {"url": "http://127.0.0.1:9", "rate": 0}},
        },
    )
    assert result.get("failed") and "sources.synthetic.rate=0.0" in result["msg"], result


def test_a_window_the_lb_did_not_answer_in_is_discarded_not_judged_on_the_probes(tmp_path) -> None:
    """With the lb source, an LB that does not answer (restarting: here, no admin socket at all) discards the
    window: the synthetic requests are not judged on their own answers (they fail for the LB's sake), and the
    per-route figures are still there, empty."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Colors)
    server.statuses = {"blue": 200, "green": 503}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_module(
            "canary_gate",
            {
                "baseline": "blue",
                "canary": "green",
                "window": 1,
                "fail_on": "never",
                "min_requests": 15,
                "min_samples": 15,
                "sources": {
                    "lb": {"dir": str(tmp_path / "lb"), "container": "no-such-lb", "route": "api", "timeout": 0.5},
                    "synthetic": {"url": f"http://127.0.0.1:{server.server_address[1]}", "rate": 20},
                },
            },
        )
    finally:
        server.shutdown()
        server.server_close()
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "hold" and result["unobserved"], result
    assert [m["metric"] for m in result["metrics"]] == ["counters"], result["metrics"]
    assert result["routes"][0]["figures"]["canary"]["requests"] == 0
