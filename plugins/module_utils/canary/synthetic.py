# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Synthetic requests through the LB to both colors during a measurement's window.

A quiet service gives the gate nothing to judge: these requests, pinned to each color by the trusted
canary header, go through the LB's public address, so the LB's log counts them like any other request
and they fill min_requests/min_samples. They are spread evenly over the window, sent from one thread per
color, and none starts after the window's end (one in flight then has its whole timeout: stop() waits for it,
so a slow service's last request is not failed for want of time). Their query carries SYNTHETIC_MARKER, so
the LB's log tells them from real traffic and the judge compares like with like.
"""

from __future__ import annotations

import math
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.urls import open_url

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import SYNTHETIC_MARKER

ROLES = ("baseline", "canary")


def schedule(rate, seconds):
    """Offsets (seconds after the window's start) of one color's requests: rate per second over the
    window, evenly spread and centred in their slots; at least one when the rate is positive."""
    if rate <= 0 or seconds <= 0:
        return []
    count = max(1, int(math.floor(rate * seconds + 1e-9)))
    return [(index + 0.5) * seconds / count for index in range(count)]


def tally(sent, statuses, expect_status):
    """The counts of one color: sent, answered (any HTTP status), failed (not answered expect_status)."""
    answered = sum(1 for status in statuses if status is not None and status > 0)
    good = sum(1 for status in statuses if status == expect_status)
    return {"sent": sent, "answered": answered, "failed": sent - good}


def marked(url):
    """The URL with SYNTHETIC_MARKER first in its query (any query of its own kept after it: a long one cut in
    the LB's log keeps the marker)."""
    parts = urlsplit(url)
    query = f"{SYNTHETIC_MARKER}&{parts.query}" if parts.query else SYNTHETIC_MARKER
    return urlunsplit(parts._replace(query=query))


class SyntheticProbes:
    """One window of synthetic requests: start() before the window, stop() at its end."""

    def __init__(self, source, values, opener=open_url, clock=time.monotonic):
        self.url = marked(source["url"].rstrip("/") + "/" + source.get("path", "/").lstrip("/"))
        self.rate = source.get("rate", 5)
        self.timeout = source.get("timeout", 5)
        self.expect = source.get("expect_status", 200)
        self.headers = dict(source.get("headers") or {})
        self.header = source.get("header", "X-Canary")
        self.values = values  # role -> the header's value (a color)
        self.opener = opener
        self.clock = clock
        self.stopped = threading.Event()
        self.threads = []
        self.results = {role: {"statuses": [], "latencies_ms": [], "sent": 0} for role in values}
        self.deadline = None

    def start(self, seconds):
        began = self.clock()
        self.deadline = began + seconds
        offsets = schedule(self.rate, seconds)
        for role in self.values:
            thread = threading.Thread(target=self.send_all, args=(role, began, offsets), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def send_all(self, role, began, offsets):
        headers = {**self.headers, self.header: self.values[role]}
        out = self.results[role]
        for offset in offsets:
            wait = began + offset - self.clock()
            if wait > 0 and self.stopped.wait(wait):
                return
            if self.stopped.is_set() or self.deadline - self.clock() <= 0:
                return
            out["sent"] += 1
            started = self.clock()
            status = None
            try:
                response = self.opener(self.url, headers=headers, timeout=self.timeout)
                response.read()
                status = response.getcode()
            except Exception as exc:  # HTTPError carries a code; anything else is no answer
                status = getattr(exc, "code", None)
            out["statuses"].append(status)
            if status:
                out["latencies_ms"].append((self.clock() - started) * 1000)

    def stop(self):
        """End the window (no request starts after it) and wait for those in flight (at most about their
        timeout); per role the counts, and the statuses and latencies of the answers (for a gate that has no
        LB log to read)."""
        self.stopped.set()
        until = self.clock() + self.timeout + 1  # one bound for all threads: their requests run side by side
        for thread in self.threads:
            thread.join(max(0, until - self.clock()))
        return {
            role: {
                **tally(result["sent"], result["statuses"], self.expect),
                "statuses": list(result["statuses"]),
                "latencies_ms": list(result["latencies_ms"]),
            }
            for role, result in self.results.items()
        }
