"""Request handling, independent of HTTP plumbing and of PostgreSQL.

``App.handle(method, path, body)`` returns a ``Response``; the HTTP server (server.py) only reads
requests and writes responses, and the database sits behind the small ``Store`` interface, so the
logic can be tested with an in-memory store and no sockets.

Hot path: ``GET /`` answers precomputed bytes and never touches the database. ``GET /health``
checks the database (reachable, and a schema this version can use) at most once per
``HEALTH_CACHE_S`` (default 1 s) and answers the cached verdict in between, so health checks from
Docker and HAProxy do not turn into a query per probe.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from .config import Config

MAX_NAME_LENGTH = 200
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class StoreError(Exception):
    """The database refused a statement (answered 500); ``code`` is the SQLSTATE when known."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class StoreUnavailable(StoreError):
    """The database cannot be reached, or every pooled connection is busy (answered 503)."""


class Store(Protocol):
    def list_items(self, limit: int) -> list[dict[str, Any]]: ...

    def add_item(self, name: str) -> dict[str, Any]: ...

    def check(self) -> str | None:
        """None when the database is reachable and its schema suits this version, else why not."""

    def close(self) -> None: ...


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # JSON


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, encode({"error": message, **extra}))


def burn_cpu(seconds: float) -> None:
    """Spin until this thread has used ``seconds`` of CPU time (CPU_BURN_MS): CPU, not waiting."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def log_injected_traceback(every: int) -> None:
    """A real Python traceback on stderr (LOG_TRACEBACKS); the request is still answered normally."""
    try:
        raise RuntimeError(f"injected error (LOG_TRACEBACKS={every}), the request is answered anyway")
    except RuntimeError:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()


class App:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.store = store
        self._rand = rand
        self._sleep = sleep
        self._clock = clock
        self._identity = {"version": config.version, "color": config.color}
        self._root = Response(200, encode({**self._identity, "host": socket.gethostname()}))
        self._health_lock = threading.Lock()
        self._health_until = float("-inf")
        self._health_problem: str | None = None
        self._count_lock = threading.Lock()
        self._requests = 0  # requests other than /health, for LOG_TRACEBACKS

    # -- routing --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes = b"") -> Response:
        path, _sep, query = target.partition("?")
        if path == "/health":
            return self.health() if method in ("GET", "HEAD") else error(405, "method not allowed")
        faults = self.config.faults
        delay = faults.delay_s(path)
        if delay:
            self._sleep(delay)
        if faults.cpu_burn_ms:
            burn_cpu(faults.burn_s(path))
        if faults.log_tracebacks:
            with self._count_lock:
                self._requests += 1
                count = self._requests
            if faults.logs_traceback(path, count):
                log_injected_traceback(faults.log_tracebacks)
        if faults.fail_rate and faults.fails(path, self._rand()):
            return error(500, "injected failure (FAIL_RATE)", **self._identity)
        if path == "/":
            return self._root if method in ("GET", "HEAD") else error(405, "method not allowed")
        if path == "/items":
            if method in ("GET", "HEAD"):
                return self._db(self._list_items, query)
            if method == "POST":
                return self._db(self._add_item, body)
            return error(405, "method not allowed")
        return error(404, "not found")

    # -- endpoints ------------------------------------------------------------------------------

    def health(self) -> Response:
        if self.config.faults.unhealthy:
            return Response(503, encode({"status": "unhealthy", "reason": "UNHEALTHY=1", **self._identity}))
        problem = self._db_problem() if self.config.health_db_check else None
        if problem:
            return Response(503, encode({"status": "unhealthy", "reason": problem, **self._identity}))
        return Response(200, encode({"status": "ok", **self._identity}))

    def _list_items(self, query: str) -> Response:
        raw = parse_qs(query).get("limit", [str(DEFAULT_LIMIT)])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            return error(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
        return Response(200, encode({"items": self.store.list_items(int(raw)), **self._identity}))

    def _add_item(self, body: bytes) -> Response:
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return error(400, "body is not JSON")
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            return error(400, f'expected {{"name": "<1 to {MAX_NAME_LENGTH} characters>"}}')
        return Response(201, encode(self.store.add_item(name.strip())))

    def _db(self, endpoint: Callable[[Any], Response], arg: Any) -> Response:
        try:
            return endpoint(arg)
        except StoreUnavailable as exc:
            return error(503, f"database unavailable: {exc}", **self._identity)
        except StoreError as exc:
            print(f"database error [{exc.code}]: {exc}", file=sys.stderr, flush=True)
            return error(500, "database error", sqlstate=exc.code, **self._identity)

    # -- cached database check ------------------------------------------------------------------

    def _db_problem(self) -> str | None:
        if self._clock() < self._health_until:
            return self._health_problem
        with self._health_lock:  # one check at a time; the others then read its result
            if self._clock() >= self._health_until:
                try:
                    problem = self.store.check()
                except StoreError as exc:
                    problem = f"database: {exc}"
                except Exception as exc:  # any failure means unhealthy, never a crash
                    problem = f"database check failed: {type(exc).__name__}: {exc}"
                self._health_problem = problem
                self._health_until = self._clock() + self.config.health_cache_s
            return self._health_problem
