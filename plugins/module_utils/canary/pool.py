# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a judgement pooled over several hosts (the fleet gate) needs from one gate's last measurement, compactly:
per route and side (baseline, canary) the requests, the errors and the latencies as a histogram, with the synthetic
requests apart when the LB's log tells them apart - and what the host's verdict would be were its traffic judged in
the pool (its own verdict).

The histogram is exact: [[value, count], ...] of the latencies as the LB's log gave them (whole milliseconds from
HAProxy's %Ta and Nginx's $request_time, microseconds from Traefik), so it is the same multiset as the samples - the
same nearest-rank percentiles and the same Mann-Whitney U (the test only sees ranks and ties) - and histograms of
several hosts add up to the histogram of their samples together. Its size is the number of distinct values, a few
dozen for a service answering within tens of milliseconds. Only where a side has more than MAX_BINS distinct values
(microseconds, or probes timed by the gate itself) are they rounded to whole milliseconds - HAProxy's own resolution
- and the pool says so (exact: false). No log line, URL, header or name other than the route is kept."""

from __future__ import annotations

import math
from collections import Counter

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge

VERSION = 1
MAX_BINS = 500
ROLES = ("baseline", "canary")
# The metrics the judge computes from the traffic sample (judge.compare, judge.error_rates): the ones a pool judges
# again over every host's requests. Prometheus queries, probes, containers, health and counters are the host's own.
POOLED_METRICS = frozenset(
    {
        "error_rate",
        "error_rate_increase",
        "latency",
        "latency_ratio",
        "p95_ms",
        "p99_ms",
        "real_error_rate",
        "real_p95_ms",
        "real_p99_ms",
    }
)
TRAFFIC_SOURCES = frozenset({"lb", "haproxy_log", "haproxy_stats", "synthetic"})


def whole_ms(value):
    return int(math.floor(value + 0.5))


def histogram(latencies_ms):
    """(pairs, exact): [[value, count], ...] sorted by value, None for None (counters have no latencies)."""
    if latencies_ms is None:
        return None, True
    counts = Counter(latencies_ms)
    exact = len(counts) <= MAX_BINS
    if not exact:
        counts = Counter(whole_ms(value) for value in latencies_ms)
    return [[value, count] for value, count in sorted(counts.items())], exact


def expand(pairs):
    """The samples of a histogram, sorted; None for None."""
    if pairs is None:
        return None
    return [value for value, count in pairs for _n in range(count)]


def side_pool(part):
    """One side of one route's sample ({"requests", "errors", "latencies_ms", and "real" and "synthetic" parts from
    an LB log}) -> ({"requests", "errors", "latency_ms", "synthetic"?}, exact). The real part is the whole minus
    the synthetic one: not kept twice."""
    pairs, exact = histogram(part.get("latencies_ms"))
    out = {"requests": part["requests"], "errors": part["errors"], "latency_ms": pairs}
    if "synthetic" in part:
        synthetic, synthetic_exact = side_pool(part["synthetic"])
        out["synthetic"] = synthetic
        exact = exact and synthetic_exact
    return out, exact


def build(samples, source, measurement, own):
    """The pool of one gate: samples {route or None: {role: part} or None (window discarded)}; source the traffic
    source of the samples (None: no source read the traffic - Prometheus or probes alone: no route); measurement the
    last one (start, end); own (verdict, reason) - own_verdict()."""
    routes, exact = [], True
    if source is not None:
        for route, sample in samples.items():
            entry = {"route": route}
            for role in ROLES:
                if sample is None:
                    entry[role] = None
                    continue
                entry[role], side_exact = side_pool(sample[role])
                exact = exact and side_exact
            routes.append(entry)
    return {
        "version": VERSION,
        "source": source,
        "start": measurement["start"],
        "end": measurement["end"],
        "exact": exact,
        "own_verdict": own[0],
        "own_reason": own[1],
        "routes": routes,
    }


def pooled(metric):
    """Whether a metric is one a pool judges again (a traffic metric of the judge)."""
    return (
        metric["metric"] in POOLED_METRICS and metric.get("source") in TRAFFIC_SOURCES and not metric.get("unobserved")
    )


def deferred(measurement):
    """The measurement with its inconclusive traffic metrics (too little traffic to judge the host alone) left to the
    pool: counted as passed. A failed one stays failed - a host bad on its own traffic is bad in any pool."""
    metrics = [
        {**m, "status": judge.PASS} if m["status"] == judge.INCONCLUSIVE and pooled(m) else m
        for m in measurement["metrics"]
    ]
    return {**measurement, "metrics": metrics, "verdict": judge.verdict(metrics)}


def own_verdict(measurements, routes, limits):
    """(verdict, reason) of a host once its traffic is judged in a pool: its measurements combined as the gate
    combines them (routes: the lb source's routes, or [None]; limits: failure_limit, inconclusive_limit,
    on_inconclusive_limit), with the inconclusive traffic metrics deferred to the pool. Never worse than the
    host's own verdict; a hold left is one the pool cannot lift (an LB not observed, a reload, a container
    still starting, a Prometheus query without data)."""
    kept = [deferred(m) for m in measurements]
    if routes and routes != [None]:
        verdict, reason, _per_route = judge.combine_routes(kept, routes, *limits)
        return verdict, reason
    return judge.combine(kept, *limits)
