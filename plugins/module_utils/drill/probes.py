# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drill's probes: requests through the LB's public address, one after the other from one thread, each
with its own number in its query, so the LB's own request log says which color served each one (whatever
the LB kind: no header is needed from the LB, and none is trusted from the application).

The query also carries SYNTHETIC_MARKER: the canary gate and the release report keep them apart from real
traffic. They are sent fast while the traffic moves (to time it) and slowly while it holds, over one kept-alive
connection (every kind of LB balances each request of it on its own): a new connection per probe would cost more
than the change it times.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import SYNTHETIC_MARKER

PROBE_KEY = "switchyard-drill"
PROBE_RE = re.compile(r"[?&]" + re.escape(PROBE_KEY) + r"=([A-Za-z0-9]+)\.(\d+)(?:&|#|$)")


def probe_url(url, path, tag, number):
    """url + path with the synthetic marker and this probe's number (tag.number) first in the query."""
    parts = urlsplit(url.rstrip("/") + "/" + path.lstrip("/"))
    query = f"{SYNTHETIC_MARKER}&{PROBE_KEY}={tag}.{number}" + (f"&{parts.query}" if parts.query else "")
    return urlunsplit(parts._replace(query=query))


def probe_number(target, tag):
    """The number of this drill's probe in a logged request target, or None (another request)."""
    match = PROBE_RE.search(target or "")
    return int(match.group(2)) if match and match.group(1) == tag else None


class Connection:
    """GET over one kept-alive HTTP(S) connection, opened again after any error; the status, or None (no answer)."""

    def __init__(self, url, timeout):
        parts = urlsplit(url)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.timeout = timeout
        self.conn = None

    def open(self):
        if self.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the LB's own address: it is timed, not trusted
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a probe is not held for the next one
        return conn

    def get(self, url):
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            self.conn = self.conn or self.open()
            self.conn.request("GET", target or "/", headers={"User-Agent": "switchyard-drill"})
            response = self.conn.getresponse()
            response.read()
            if response.will_close:
                self.close()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Prober:
    """Sends probes until stop(); fast() and slow() set the pace. Each probe is kept as a dict: n, sent and
    answered (monotonic seconds), status (None: no HTTP answer)."""

    def __init__(self, url, path, tag, fast_rate=200.0, slow_rate=4.0, timeout=2.0, connection=None, clock=None):
        self.url, self.path, self.tag = url, path, tag
        self.fast_interval, self.slow_interval = 1.0 / fast_rate, 1.0 / slow_rate
        self.timeout = timeout
        self.connection = connection or Connection(url, timeout)
        self.clock = clock or time.monotonic
        self.probes = []
        self.lock = threading.Lock()
        self.pace = threading.Event()  # set: fast
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="switchyard-drill-probes", daemon=True)

    def start(self, fast=True):
        (self.pace.set if fast else self.pace.clear)()
        self.thread.start()
        return self

    def fast(self):
        self.pace.set()

    def slow(self):
        self.pace.clear()

    def loop(self):
        number = 0
        while not self.stopped.is_set():
            number += 1
            sent = self.clock()
            status = self.connection.get(probe_url(self.url, self.path, self.tag, number))
            probe = {"n": number, "sent": sent, "answered": self.clock(), "status": status}
            with self.lock:
                self.probes.append(probe)
            interval = self.fast_interval if self.pace.is_set() else self.slow_interval
            self.stopped.wait(max(0.0, sent + interval - self.clock()))

    def stop(self):
        self.stopped.set()
        self.thread.join(self.timeout + 2)
        self.connection.close()
        return self.taken()

    def taken(self):
        """A copy of the probes so far."""
        with self.lock:
            return [dict(p) for p in self.probes]

    def failing(self, count):
        """Whether the last count probes all failed (no answer, or 5xx)."""
        with self.lock:
            last = self.probes[-count:]
        return len(last) == count and all(p["status"] is None or p["status"] >= 500 for p in last)
