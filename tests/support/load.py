"""Constant-rate HTTP load on 127.0.0.1 for a bounded time, from a few keep-alive connections.

`answers` keeps each request's status (-1 for a socket error or a timeout). With record=True every
request is also kept as an `Answer` (when it was sent, its latency, status or error kind, and the
`version` and `color` of a JSON body), for measurements that need to know who answered and when.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Answer:
    at: float  # wall-clock time (time.time()) the request was sent: comparable with the ledger's times
    seconds: float  # latency, or the time until the error
    status: int  # HTTP status, -1 when no HTTP answer came
    error: str | None = None  # "timeout" or "connection error" when status is -1
    color: str | None = None  # from a JSON body (the demo's 200 and 5xx answers carry it)
    version: str | None = None
    maintenance: bool = False  # the LB's maintenance page (X-Switchyard-Maintenance: on, with Retry-After)

    @property
    def kind(self) -> str:
        """How the request ended: "ok", "HTTP <status>", "timeout" or "connection error"."""
        if self.status == -1:
            return self.error or "error"
        return "ok" if 200 <= self.status < 300 else f"HTTP {self.status}"


def classify(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection error"
    return f"error {type(exc).__name__}"


def identity(resp: requests.Response) -> tuple[str | None, str | None]:
    """(color, version) of a JSON body, (None, None) for any other body (HAProxy's own 503 is HTML)."""
    try:
        body = resp.json()
    except ValueError:
        return None, None
    return (body.get("color"), body.get("version")) if isinstance(body, dict) else (None, None)


class Load:
    def __init__(
        self,
        url: str,
        rate: float,
        seconds: float,
        connections: int = 4,
        headers: dict | None = None,
        record: bool = False,
    ):
        self.url, self.interval, self.seconds = url, connections / rate, seconds
        self.headers = headers or {}
        self.record = record
        self.answers: list[int] = []
        self.records: list[Answer] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _n in range(connections)]

    def worker(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.seconds
        next_at = time.monotonic()
        while time.monotonic() < deadline and not self.stopping.is_set():
            sent, started = time.time(), time.perf_counter()
            try:
                resp = session.get(self.url, headers=self.headers, timeout=5)
                status, took = resp.status_code, time.perf_counter() - started
                page = resp.headers.get("X-Switchyard-Maintenance") == "on" and "Retry-After" in resp.headers
                answer = Answer(sent, took, status, None, *identity(resp), maintenance=page) if self.record else None
            except requests.RequestException as exc:
                status, took = -1, time.perf_counter() - started
                answer = Answer(sent, took, -1, classify(exc)) if self.record else None
                session = requests.Session()
            with self.lock:
                self.answers.append(status)
                if answer is not None:
                    self.records.append(answer)
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(self.seconds + 10)

    def stop(self) -> None:
        """End the load now (rather than at its deadline) and wait for the connections."""
        self.stopping.set()
        self.join()

    def failures(self, phases: list[tuple[str, float, float]] = ()) -> list[str]:
        """Each recorded request that did not get a 2xx, said with its time, how it ended and the phase it fell in
        (phases: (name, start, end) wall-clock times), for an assertion message that explains itself."""
        with self.lock:
            failed = [a for a in self.records if a.kind != "ok"]
        said = []
        for a in failed:
            during = [name for name, start, end in phases if start <= a.at < end] or ["between runs"]
            clock = time.strftime("%H:%M:%S", time.gmtime(a.at)) + f".{int(a.at % 1 * 1000):03d}Z"
            said.append(f"{clock} {a.kind} after {a.seconds:.3f} s, during {', '.join(during)}")
        return said

    def between(self, start: float, end: float) -> list[Answer]:
        """The recorded requests sent in [start, end) (wall-clock times)."""
        with self.lock:
            return [a for a in self.records if start <= a.at < end]
