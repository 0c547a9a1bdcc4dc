# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-request evidence from HAProxy's log lines: status and timings per server.

The lb role logs `%b/%s %ST %Tr %Ta` in that order (backend/server, status, server response time,
total active time, in ms); only these fields are read, wherever they stand in the line. This is
the only place real percentiles come from: the stats socket only has averaged latencies. The request line
(`%{+Q}r`, last by default) tells the canary gate's synthetic requests (their query carries
SYNTHETIC_MARKER) from real traffic; a format without it counts every request as real.
"""

from __future__ import annotations

import calendar
import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import SYNTHETIC_MARKER

LINE_RE = re.compile(r"(?:^|\s)([\w.-]+)/([\w.<>-]+) (-?\d+) (-?\d+) (-?\d+)(?:\s|$)")
# The request line's target (quoted by %{+Q}r or not; an absolute URI over HTTP/2), wherever it stands.
REQUEST_RE = re.compile(r'(?:^|\s)"?[A-Z]+ (\S+) HTTP/\d')
MARKER_RE = re.compile(r"[?&]" + re.escape(SYNTHETIC_MARKER) + r"(?:&|#|$)")


def is_synthetic(line):
    """Whether the logged request's target carries the synthetic marker in its query."""
    request = REQUEST_RE.search(line)
    return bool(request and MARKER_RE.search(request.group(1)))


class Samples:
    def __init__(self):
        self.statuses = []
        self.latencies_ms = []  # %Ta of requests that got an answer from the server

    def add(self, status, response_ms, total_ms):
        self.statuses.append(status)
        if response_ms >= 0 and total_ms >= 0:
            self.latencies_ms.append(total_ms)

    @property
    def requests(self):
        return len(self.statuses)

    @property
    def errors(self):
        """5xx answers and requests that got no answer (status -1)."""
        return sum(1 for s in self.statuses if s >= 500 or s < 0)


class ServerSamples(Samples):
    """Every request of one server, and apart its real and its synthetic ones."""

    def __init__(self):
        super().__init__()
        self.real = Samples()
        self.synthetic = Samples()

    def add(self, status, response_ms, total_ms, synthetic=False):
        super().add(status, response_ms, total_ms)
        (self.synthetic if synthetic else self.real).add(status, response_ms, total_ms)


def parse_lines(lines, backend):
    """{server: ServerSamples} for the lines of one backend; other lines are ignored."""
    servers = {}
    for line in lines:
        match = LINE_RE.search(line)
        if not match or match.group(1) != backend:
            continue
        server = match.group(2)
        samples = servers.get(server)
        if samples is None:
            samples = servers[server] = ServerSamples()
        status, response_ms, total_ms = int(match.group(3)), int(match.group(4)), int(match.group(5))
        samples.add(status, response_ms, total_ms, synthetic=is_synthetic(line))
    return servers


# `docker logs --timestamps` puts RFC 3339 time (UTC, nanoseconds) before each line.
STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z\s")


def parse_timed_lines(lines, backends):
    """[(epoch seconds, backend, server, status, total ms or None)] of the timestamped lines of the given
    backends, in log order: the per-request evidence a release report draws its time series from."""
    return list(iter_timed_lines(lines, backends))


def iter_timed_lines(lines, backends):
    """parse_timed_lines one record at a time: a log read as a stream is never held whole."""
    wanted = set(backends)
    seconds = {}  # a log holds many lines per second: each second's prefix is converted once
    for line in lines:
        stamp = STAMP_RE.match(line)
        if not stamp:
            continue
        match = LINE_RE.search(line, stamp.end() - 1)
        if not match or match.group(1) not in wanted:
            continue
        prefix = stamp.group(1)
        epoch = seconds.get(prefix)
        if epoch is None:
            epoch = seconds[prefix] = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
        fraction = stamp.group(2)
        at = epoch + (float("0." + fraction) if fraction else 0.0)
        response_ms, total_ms = int(match.group(4)), int(match.group(5))
        latency = total_ms if response_ms >= 0 and total_ms >= 0 else None
        yield at, match.group(1), match.group(2), int(match.group(3)), latency
