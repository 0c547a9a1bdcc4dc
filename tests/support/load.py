"""Constant-rate HTTP load on 127.0.0.1 for a bounded time, from a few keep-alive connections."""

from __future__ import annotations

import threading
import time

import requests


class Load:
    def __init__(self, url: str, rate: float, seconds: float, connections: int = 4, headers: dict | None = None):
        self.url, self.interval, self.seconds = url, connections / rate, seconds
        self.headers = headers or {}
        self.answers: list[int] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _n in range(connections)]

    def worker(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.seconds
        next_at = time.monotonic()
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                status = session.get(self.url, headers=self.headers, timeout=5).status_code
            except requests.RequestException:
                status = -1
                session = requests.Session()
            with self.lock:
                self.answers.append(status)
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
