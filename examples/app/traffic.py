#!/usr/bin/env python3
"""Steady HTTP traffic for the demo's canary gate: the gate judges real requests, and a demo
machine has no users. Sends GET requests at a fixed rate for a bounded time (or until SIGTERM)
and prints how many answers each color and status gave.

    python3 traffic.py --url http://127.0.0.1:8080/ --rate 40 --duration 300
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import signal
import threading
import time
import urllib.parse


def worker(url: str, interval: float, deadline: float, stop: threading.Event, seen: collections.Counter, lock):
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    conn = None
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            conn = conn or http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            key = f"HTTP {resp.status}"
            if resp.status == 200:
                key = json.loads(body).get("color", key)
        except (OSError, http.client.HTTPException, ValueError):
            key, conn = "no answer", None
        with lock:
            seen[key] += 1
        next_at += interval
        stop.wait(max(0.0, next_at - time.monotonic()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second (all connections)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds, at most")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must point at this machine (127.0.0.1): the demo sends traffic nowhere else")
    stop, lock, seen = threading.Event(), threading.Lock(), collections.Counter()
    signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    signal.signal(signal.SIGINT, lambda *_args: stop.set())
    deadline = time.monotonic() + args.duration
    threads = [
        threading.Thread(
            target=worker, args=(args.url, args.connections / args.rate, deadline, stop, seen, lock), daemon=True
        )
        for _n in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(seen.values())
    print(f"traffic: {total} requests; " + ", ".join(f"{k}: {v}" for k, v in sorted(seen.items())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
