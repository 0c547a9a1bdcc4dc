# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-request evidence from Nginx's access log (the lb role's `switchyard` log_format).

A line carries `switchyard=<route>/<color> $status $upstream_response_time $request_time $body_bytes_sent
"$request"`; Nginx's times are seconds with milliseconds. $upstream_response_time is `-` when no server
answered, and lists one time per server tried (`0.001, 0.002`): the last one answered. Requests that never
reached a color (the LB's own health URI, a 503 for a route without weight) carry `-` or `none` and are not a
color's. The request line tells the gate's synthetic requests apart; it is the client's, so nothing is read from
it but that (a line is matched from its start: `$time_iso8601 $remote_addr switchyard=...`).
"""

from __future__ import annotations

import calendar
import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import ServerSamples, is_synthetic

# Anchored on the fields before it ($time_iso8601 $remote_addr): a line whose own switchyard= field does not match
# is no request of a route, whatever its client put into "$request" later on the line.
LINE_RE = re.compile(
    r"\d{4}-\d\d-\d\dT[0-9:+-]+ [0-9A-Fa-f.:]+ "
    r"switchyard=(?P<route>[a-z0-9_-]+)/(?P<color>blue|green) (?P<status>\d{3}) "
    r"(?P<upstream>-|[\d.]+(?:(?:, | : )(?:[\d.]+|-))*) (?P<total>\d+(?:\.\d+)?)(?:\s|$)"
)
# `docker logs --timestamps` puts RFC 3339 time (UTC, nanoseconds) before each line.
STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z\s")


def fields(match):
    """(route, color, status, response ms or -1, total ms) of a matched line."""
    last = re.split(r", | : ", match.group("upstream"))[-1]
    response_ms = round(float(last) * 1000) if last != "-" else -1
    total_ms = round(float(match.group("total")) * 1000)
    return match.group("route"), match.group("color"), int(match.group("status")), response_ms, total_ms


def parse_lines(lines, route):
    """{color: ServerSamples} of the lines of route; other lines are ignored."""
    colors = {}
    for line in lines:
        match = LINE_RE.match(line)
        if not match or match.group("route") != route:
            continue
        _route, color, status, response_ms, total_ms = fields(match)
        colors.setdefault(color, ServerSamples()).add(status, response_ms, total_ms, synthetic=is_synthetic(line))
    return colors


def iter_timed_lines(lines, routes):
    """(epoch seconds, route, color, status, total ms or None) of the timestamped lines of routes, in log order,
    one at a time (a log read as a stream is never held whole)."""
    wanted = set(routes)
    seconds = {}
    for line in lines:
        stamp = STAMP_RE.match(line)
        if not stamp:
            continue
        match = LINE_RE.match(line, stamp.end())
        if not match or match.group("route") not in wanted:
            continue
        prefix = stamp.group(1)
        epoch = seconds.get(prefix)
        if epoch is None:
            epoch = seconds[prefix] = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
        fraction = stamp.group(2)
        route, color, status, response_ms, total_ms = fields(match)
        yield (
            epoch + (float("0." + fraction) if fraction else 0.0),
            route,
            color,
            status,
            total_ms if response_ms >= 0 else None,
        )
