"""The drill's probes against a real HTTP server on 127.0.0.1: numbered in order over one kept-alive connection,
paced, and a server that stops answering is seen as failing."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.drill.probes import Prober, probe_number


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # headers and body in one write (flushed after each request), as a real server answers
    seen: list = []
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Handler.seen.append((self.path, self.client_address[1]))
        body = b"ok"
        self.send_response(Handler.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen, Handler.status = [], 200
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_probes_are_numbered_marked_and_sent_over_one_connection(server: str) -> None:
    prober = Prober(server, "/health", "cafe0001", fast_rate=200).start()
    time.sleep(0.3)
    taken = prober.stop()
    assert len(taken) >= 10 and [p["n"] for p in taken] == list(range(1, len(taken) + 1))
    assert all(p["status"] == 200 and p["answered"] >= p["sent"] for p in taken)
    assert [probe_number(path, "cafe0001") for path, _port in Handler.seen] == [p["n"] for p in taken]
    assert all(path.startswith("/health?switchyard-synthetic=1&") for path, _port in Handler.seen)
    assert len({port for _path, port in Handler.seen}) == 1, "one kept-alive connection"


def test_the_slow_pace_sends_a_few_a_second(server: str) -> None:
    prober = Prober(server, "/", "cafe0002", fast_rate=200, slow_rate=4).start(fast=False)
    time.sleep(0.6)
    assert 1 <= len(prober.stop()) <= 4


def test_failing_answers_and_no_answer_are_failing(server: str) -> None:
    Handler.status = 503
    prober = Prober(server, "/", "cafe0003", fast_rate=200).start()
    time.sleep(0.1)
    assert prober.failing(3)
    prober.stop()
    closed = Prober("http://127.0.0.1:9", "/", "cafe0004", fast_rate=200, timeout=0.5).start()
    time.sleep(0.1)
    assert closed.failing(3) and all(p["status"] is None for p in closed.stop())
