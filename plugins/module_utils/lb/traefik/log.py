# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-request evidence from Traefik's JSON access log (the lb role logs every field to stdout).

Each line is one JSON object: ServiceName is the color's service (<route>-<color>@file, also when the request
went through the weighted service <route>), DownstreamStatus what the client got, OriginStatus what the color
answered (0: no answer), Duration and OriginDuration nanoseconds, StartUTC when it started, RequestPath the
path with its query (the canary gate's synthetic requests carry SYNTHETIC_MARKER there). Traefik's own log
lines (level, message) and `docker logs --timestamps` prefixes are skipped or read past.
"""

from __future__ import annotations

import calendar
import json
import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.lb.samples import ServerSamples, is_synthetic_target

SERVICE_RE = re.compile(r"(?P<route>[a-z0-9][a-z0-9_-]{0,47})-(?P<color>blue|green)@file")
START_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


def parse_line(line):
    """(route, color, entry) of an access-log line that reached a color; None for anything else."""
    start = line.find("{")
    if start < 0 or '"ServiceName"' not in line:
        return None
    try:
        entry = json.loads(line[start:])
    except ValueError:
        return None
    match = SERVICE_RE.fullmatch(str(entry.get("ServiceName") or ""))
    if not match or not isinstance(entry.get("DownstreamStatus"), int):
        return None
    return match.group("route"), match.group("color"), entry


def timings(entry):
    """(status, response ms or -1 when the color did not answer, total ms)."""
    status = entry["DownstreamStatus"]
    total_ms = round(int(entry.get("Duration") or 0) / 1e6, 3)
    answered = int(entry.get("OriginStatus") or 0) > 0
    response_ms = round(int(entry.get("OriginDuration") or 0) / 1e6, 3) if answered else -1
    return status, response_ms, total_ms


def parse_lines(lines, route):
    """{color: ServerSamples} of one route's requests."""
    colors = {}
    for line in lines:
        parsed = parse_line(line)
        if not parsed or parsed[0] != route:
            continue
        _route, color, entry = parsed
        status, response_ms, total_ms = timings(entry)
        samples = colors.setdefault(color, ServerSamples())
        samples.add(status, response_ms, total_ms, synthetic=is_synthetic_target(entry.get("RequestPath")))
    return colors


def epoch(stamp):
    match = START_RE.fullmatch(stamp or "")
    if not match:
        return None
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float("0." + match.group(2)) if match.group(2) else 0.0)


def iter_records(lines, routes, synthetic=False):
    """(epoch seconds, route, color, status, latency ms or None) of the routes' real requests (synthetic ones
    too when synthetic=True), one at a time: a log read as a stream is never held whole."""
    wanted = set(routes)
    for line in lines:
        parsed = parse_line(line)
        if not parsed or parsed[0] not in wanted:
            continue
        route, color, entry = parsed
        if not synthetic and is_synthetic_target(entry.get("RequestPath")):
            continue
        at = epoch(entry.get("StartUTC"))
        if at is None:
            continue
        status, response_ms, total_ms = timings(entry)
        yield at, route, color, status, (total_ms if response_ms >= 0 else None)
