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

from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import ServerSamples, is_synthetic

LINE_RE = re.compile(r"(?:^|\s)([\w.-]+)/([\w.<>-]+) (-?\d+) (-?\d+) (-?\d+)(?:\s|$)")


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
