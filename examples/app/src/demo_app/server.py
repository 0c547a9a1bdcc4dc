"""HTTP/1.1 plumbing around app.App: ThreadingHTTPServer with keep-alive, and a graceful drain.

Speed notes (the app must sustain thousands of requests/s behind HAProxy on two cores):
- Keep-alive (HTTP/1.1): one thread per connection, no TCP handshake per request.
- TCP_NODELAY on accepted sockets (``disable_nagle_algorithm``): with keep-alive and Nagle's
  algorithm, a response written in two pieces waits for the client's delayed ACK, ~40 ms each.
- A buffered ``wfile``: headers and body leave in one send(), flushed by http.server at the end
  of each request.
- No reverse DNS lookup at bind time (HTTPServer calls getfqdn(), slow without a resolver).
- Access log off by default (ACCESS_LOG=1 prints one line per request to stdout).

Graceful stop (``drain``): stop accepting and close the listening socket, close idle keep-alive
connections, let in-flight requests finish and answer them with ``Connection: close``, and wait
for them up to a grace period.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .app import App, Response

IDLE_TIMEOUT_S = 120  # an idle keep-alive connection is closed after this long
MAX_BODY = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on the accepted socket, see the module docstring
    wbufsize = 64 * 1024  # one send() per response
    timeout = IDLE_TIMEOUT_S
    server: DemoServer

    def handle(self) -> None:
        # BaseHTTPRequestHandler.handle(), plus: the connection counts as idle between requests,
        # so that drain() can close it without cutting a request.
        self.handle_one_request()
        while not self.close_connection and self.server.mark(self.connection, busy=False):
            self.handle_one_request()

    def parse_request(self) -> bool:
        self.server.mark(self.connection, busy=True)
        return super().parse_request()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return self._send(Response(411, b'{"error":"send a Content-Length"}'), method)
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True  # the unread body would be taken for the next request
            return self._send(Response(413, b'{"error":"body too large"}'), method)
        body = self.rfile.read(int(length)) if int(length) else b""
        try:
            response = self.server.app.handle(method, self.path, body)
        except Exception as exc:  # answer 500 and keep serving
            print(f"unhandled error on {method} {self.path}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            response = Response(500, b'{"error":"internal error"}')
        self._send(response, method)

    def _send(self, response: Response, method: str) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection or self.server.draining:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server.server_header

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.access_log:
            sys.stdout.write(
                f'{self.address_string()} - - [{self.log_date_time_string()}] "{self.requestline}" {code} -\n'
            )
            sys.stdout.flush()

    def log_error(self, fmt: str, *args: object) -> None:
        if not fmt.startswith("Request timed out"):  # idle keep-alive connections: not an error
            super().log_error(fmt, *args)


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen() backlog; socketserver's default is 5

    def __init__(self, address: tuple[str, int], app: App, *, access_log: bool = False):
        self.app = app
        self.access_log = access_log
        self.server_header = f"demo-app/{app.config.version}"
        self.draining = False
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, bool] = {}  # socket -> busy
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's getfqdn() reverse lookup
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        with self._lock:
            self._connections[request] = False
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def mark(self, request: socket.socket, *, busy: bool) -> bool:
        """Record whether a connection is inside a request; False: close it, we are draining."""
        with self._lock:
            if self.draining and not busy:
                return False
            if request in self._connections:
                self._connections[request] = busy
            return True

    def _close_idle(self) -> None:
        with self._lock:
            idle = [sock for sock, busy in self._connections.items() if not busy]
        for sock in idle:
            try:
                sock.shutdown(socket.SHUT_RD)  # the handler's read returns EOF; writes still work
            except OSError:
                pass

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def drain(self, grace_s: float) -> int:
        """Stop serving gracefully (call from another thread than serve_forever).

        Returns how many connections were still open when the grace period ended.
        """
        with self._lock:
            self.draining = True  # from now on every response says "Connection: close"
        self._close_idle()
        self.shutdown()  # serve_forever() returns: no more accept()
        self.socket.close()  # new connections are refused rather than left in the backlog
        self._close_idle()  # the ones accepted meanwhile
        deadline = time.monotonic() + grace_s
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open_connections
