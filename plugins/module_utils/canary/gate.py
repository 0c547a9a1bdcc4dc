# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Observing one window (or several measurements in it) from the configured sources, and judging.

Sources: the stats socket (counter deltas, health, reload detection), HAProxy's request log (per
request statuses and latencies: real percentiles), Prometheus queries, HTTP probes, synthetic requests
through the LB to both colors during each window, and the colors' containers. Every measurement keeps
per-color figures (requests, errors, percentiles, throughput, synthetic counts, container figures).
Observing changes nothing, so check mode observes and judges too."""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from urllib.parse import urlencode

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.urls import open_url

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge, pool
from ansible_collections.switchyard.release.plugins.module_utils.canary.containers import ContainerWatch
from ansible_collections.switchyard.release.plugins.module_utils.canary.masking import protect
from ansible_collections.switchyard.release.plugins.module_utils.canary.synthetic import SyntheticProbes
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.masking import scrub_url
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS, LBUnreachable
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_lines
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.names import check_name, check_names
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import RuntimeAPI, RuntimeAPIError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.stats import delta, snapshot
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease

UNHEALTHY = ("DOWN", "MAINT", "NOLB")
SOURCES = ("containers", "haproxy_log", "haproxy_stats", "http_probe", "lb", "prometheus", "synthetic")
ROLES = ("baseline", "canary")
# Measurements of one observation kept in the evidence (the ledger): the figures of each are a few numbers.
MEASUREMENTS_KEPT = 60


class GateError(SwitchyardError):
    """Parameters the gate cannot judge with."""


def utc_now():
    return datetime.datetime.now(datetime.UTC)


def validate_static(params):
    if params["window"] <= 0 or params["count"] < 1:
        raise GateError(f"window={params['window']} must be > 0 seconds and count={params['count']} >= 1")
    if not 0.5 <= params["confidence"] < 1:
        raise GateError(f"confidence={params['confidence']}: use a probability between 0.5 and 1, e.g. 0.95")
    sources = given_sources(params)
    if not sources:
        raise GateError(f"sources: unknown none, given none; use one or more of {', '.join(SOURCES)}")
    if sources.get("lb") and (params["baseline"] not in COLORS or params["canary"] not in COLORS):
        raise GateError(
            f"baseline={params['baseline']!r} and canary={params['canary']!r}: with sources.lb they are colors "
            f"({', '.join(COLORS)})"
        )
    if sources.get("lb"):
        routes = lb_routes(sources["lb"])
        if not routes or not all(isinstance(r, str) and r for r in routes):
            raise GateError("sources.lb: give the route judged (route) or every route judged (routes, not empty)")
        if len(set(routes)) != len(routes):
            raise GateError(f"sources.lb.routes={routes}: each route once")
    probe = sources.get("http_probe")
    if probe is not None and probe.get("count", 10) < 1:
        raise GateError(f"sources.http_probe.count={probe.get('count')}: send at least one probe")
    synthetic = sources.get("synthetic")
    if synthetic is not None and (synthetic.get("rate", 5) <= 0 or synthetic.get("timeout", 5) <= 0):
        raise GateError(
            f"sources.synthetic.rate={synthetic.get('rate')} and sources.synthetic.timeout={synthetic.get('timeout')}:"
            " both must be > 0 (requests per second per color, seconds per request)"
        )
    log = sources.get("haproxy_log")
    if log is not None and bool(log.get("container")) == bool(log.get("path")):
        raise GateError("sources.haproxy_log: give exactly one of container or path")
    if (
        (log is not None or "haproxy_stats" in sources)
        and not (sources.get("haproxy_stats") or {}).get("backend")
        and not (log or {}).get("backend")
    ):
        raise GateError("sources.haproxy_stats.backend (or sources.haproxy_log.backend) names the backend to judge")
    validate_names(params, sources)


def validate_names(params, sources):
    """HAProxy names go into Runtime API commands (joined with ';'): only HAProxy's own characters, checked
    before the first command is sent."""
    for source in ("haproxy_stats", "haproxy_log"):
        if (sources.get(source) or {}).get("backend") is not None:
            check_name(f"sources.{source}.backend", sources[source]["backend"])
    if sources.get("lb"):
        check_names(
            "sources.lb.routes" if sources["lb"].get("routes") is not None else "sources.lb.route",
            lb_routes(sources["lb"]),
        )
    if "haproxy_stats" in sources or "haproxy_log" in sources:
        # Server names of that backend.
        check_name("baseline", params["baseline"])
        check_name("canary", params["canary"])


def describe(metric):
    """One metric in a sentence, with its route when it has one."""
    return (f"route {metric['route']}: " if metric.get("route") else "") + f"{metric['metric']}: {metric['reason']}"


def header_matches(expected, headers):
    """No header expected, or the answer carries it with a value matching the pattern."""
    return not expected or bool(re.search(expected["pattern"], headers.get(expected["name"]) or ""))


def lb_routes(lb):
    """The routes the lb source judges: routes, or [route]."""
    if lb.get("routes") is not None:
        return list(lb["routes"])
    return [lb["route"]] if lb.get("route") else []


def prometheus_series(body):
    """[(labels, value)] of an instant query's answer (the JSON of /api/v1/query), values as floats
    (NaN and +/-Inf included: the judge decides). Raises ValueError saying why there is nothing to judge."""
    if not isinstance(body, dict):
        raise ValueError(f"not a Prometheus answer: {str(body)[:200]}")
    if body.get("status") != "success":
        raise ValueError(f"status {body.get('status')!r}" + (f": {body['error']}" if body.get("error") else ""))
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [({}, float(result[1]))]
    if kind == "vector":
        return [(series.get("metric") or {}, float(series["value"][1])) for series in result or []]
    raise ValueError(f"the query returned a {kind} result; an instant vector or a scalar is judged")


def prometheus_metric(query, body):
    """The metric of one query from Prometheus' answer: every series is judged against the limits (the
    worst one is reported); no series, NaN or an answer that cannot be read is inconclusive."""
    name = query.get("name") or query["query"]
    common = {"source": "prometheus", "query": query["query"]}
    try:
        series = prometheus_series(body)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return judge.metric(name, judge.INCONCLUSIVE, f"Prometheus answer not usable: {exc}", **common)
    if not series:
        return judge.metric(name, judge.INCONCLUSIVE, "the query returned no data (no series)", **common)
    checks = [
        (labels, judge.value_check(name, value, query.get("min"), query.get("max"), **common))
        for labels, value in series
    ]
    rank = {judge.PASS: 0, judge.INCONCLUSIVE: 1, judge.FAIL: 2}
    labels, worst = max(checks, key=lambda check: rank[check[1]["status"]])
    if len(checks) > 1:
        worst["reason"] += f" (series {labels or '{}'}, the worst of {len(checks)})"
        worst["series"] = len(checks)
    return worst


def totals(sample, role):
    """(requests, errors, latencies_ms) of one role in one route's sample; zeros (and no latencies) without."""
    if not sample:
        return 0, 0, None
    data = sample[role]
    return data["requests"], data["errors"], data.get("latencies_ms")


def counted(samples):
    """{"requests", "errors", "latencies_ms"} of log samples (lb.haproxy.log.Samples); zeros without."""
    if not samples:
        return {"requests": 0, "errors": 0, "latencies_ms": []}
    return {"requests": samples.requests, "errors": samples.errors, "latencies_ms": list(samples.latencies_ms)}


def split_counts(samples, role):
    """The real and synthetic requests of one role summed over the routes' samples (None, None when no sample
    tells them apart: counters, or no LB log)."""
    parts = [sample[role] for sample in samples if sample and "real" in sample[role]]
    if not parts:
        return {"real_requests": None, "synthetic_requests": None}
    return {
        "real_requests": sum(part["real"]["requests"] for part in parts),
        "synthetic_requests": sum(part["synthetic"]["requests"] for part in parts),
    }


def totals_over(samples, role):
    """(requests, errors, latencies_ms) of one role summed over the routes' samples; latencies None when no
    route has any (counters alone)."""
    requests = errors = 0
    latencies_ms = None
    for sample in samples:
        n, k, lat = totals(sample, role)
        requests, errors = requests + n, errors + k
        if lat is not None:
            latencies_ms = (latencies_ms or []) + list(lat)
    return requests, errors, latencies_ms


def scalar(value):
    return value is None or isinstance(value, (str, int, float, bool))


def compact(values):
    """The numbers and words of a metric or figures - scalars, and mappings of scalars (a limit's min and
    max) - without lists (samples, series): what a ledger entry can keep at every step."""
    return {
        key: value
        for key, value in values.items()
        if scalar(value) or (isinstance(value, dict) and all(scalar(v) for v in value.values()))
    }


def sides(figures):
    return {role: compact(values) for role, values in (figures or {}).items() if isinstance(values, dict)}


def evidence(result):
    """What the ledger keeps of a verdict: the verdict, every value of every metric, the figures per color (and
    per route) of the last measurement and of each measurement (the last MEASUREMENTS_KEPT), bounded in size."""
    kept = {
        "verdict": result["verdict"],
        "reason": result["reason"],
        "window": result["window"],
        "routes": [{k: r[k] for k in ("route", "verdict", "not_passed")} for r in result.get("routes") or []],
        "metrics": [compact(m) for m in result["metrics"]],
        "figures": sides(result["figures"]),
        "measurements": [
            {
                "start": m["start"],
                "end": m["end"],
                "verdict": m["verdict"],
                "figures": sides(m["figures"]),
                **(
                    {"route_figures": {r: sides(f) for r, f in m["route_figures"].items()}}
                    if "route_figures" in m
                    else {}
                ),
            }
            for m in result["measurements"][-MEASUREMENTS_KEPT:]
        ],
    }
    if result.get("routes"):
        kept["route_figures"] = {r["route"]: sides(r["figures"]) for r in result["routes"]}
    return kept


def given_sources(params):
    """The sources set (argument_spec fills the others with None)."""
    return {name: value for name, value in (params["sources"] or {}).items() if value is not None}


class CanaryGate:
    def __init__(self, module, runner=None, sleep=time.sleep):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.sleep = sleep
        self.sources = given_sources(self.params)
        # Credentials (probe headers, URL userinfo) hidden in the echoed arguments and masked in the result.
        self.invocation = protect(module, self.sources)
        self.result = {"invocation": self.invocation}
        stats = self.sources.get("haproxy_stats") or {}
        log = self.sources.get("haproxy_log") or {}
        self.backend = stats.get("backend") or log.get("backend")
        self.api = RuntimeAPI(stats["socket"], timeout=stats.get("timeout", 5)) if stats else None
        # The lb source: counters and request log of the routes through the LB interface, whatever the LB
        # kind; baseline and canary are then colors. Every route is observed over the same window.
        lb = self.sources.get("lb")
        self.lb = load_balancer(lb, self.runner) if lb else None
        self.routes = lb_routes(lb) if lb else [None]
        self.unmarked_warned = False
        self.limits = judge.limits_of(self.params)
        # The traffic source whose samples the pool keeps (pool.build): None when nothing reads the traffic.
        self.pool_source = next(
            (name for name in ("lb", "haproxy_log", "haproxy_stats", "synthetic") if name in self.sources), None
        )
        self.last_samples = {}

    def run(self):
        validate_static(self.params)  # before the lease is renewed or anything is asked of the LB
        # The gate changes nothing, but a window can outlast the lock's ttl: under a lease it renews it
        # while it observes (and stops judging for a run that lost it).
        with Lease(self.params.get("lease"), self.module.check_mode, warn=self.module.warn).kept():
            return self.observe()

    def observe(self):
        validate_static(self.params)
        if not judge.HAS_SCIPY and ({"haproxy_stats", "haproxy_log", "lb", "synthetic"} & set(self.sources)):
            raise GateError(missing_required_lib("scipy"))
        if self.params["initial_delay"]:
            self.sleep(self.params["initial_delay"])
        seconds = self.params["interval"] or self.params["window"] / self.params["count"]
        measurements = [self.measure(seconds) for _index in range(self.params["count"])]
        limits = (self.params["failure_limit"], self.params["inconclusive_limit"], self.params["on_inconclusive_limit"])
        last = measurements[-1]
        self.result = {"changed": False, "invocation": self.invocation}
        if self.lb:
            verdict, reason, routes = judge.combine_routes(measurements, self.routes, *limits)
            for route in routes:
                route["figures"] = last["route_figures"][route["route"]]
            self.result["routes"] = routes
        else:
            verdict, reason = judge.combine(measurements, *limits)
        self.result.update(
            {
                "verdict": verdict,
                "reason": reason,
                "metrics": last["metrics"],
                "figures": last["figures"],
                "measurements": measurements,
                "window": {"start": measurements[0]["start"], "end": last["end"]},
                "counter_resets": [r for m in measurements for r in m["counter_resets"]],
                # Windows the LB could not be observed in: a hold on them is never promoted by a policy.
                "unobserved": [x["reason"] for m in measurements for x in m["metrics"] if x.get("unobserved")],
            }
        )
        self.result["evidence"] = evidence(self.result)
        # What a fleet gate needs to judge this host's last measurement with the other hosts' (pool.build).
        self.result["pool"] = pool.build(
            self.last_samples,
            self.pool_source,
            last,
            pool.own_verdict(measurements, self.routes if self.lb else [None], limits),
        )
        if verdict == "rollback" and self.params["fail_on"] == "rollback":
            failing = [m for m in last["metrics"] if m["status"] == "fail"]
            raise GateError("canary gate: rollback - " + "; ".join(describe(m) for m in failing))
        return self.result

    # -- one measurement -----------------------------------------------------------------------
    def counters(self, route):
        """A counter snapshot keyed by the baseline's and canary's names, or None without such a source."""
        servers = [self.params["baseline"], self.params["canary"]]
        if self.lb:
            return self.lb.counters(route, servers)
        return snapshot(self.api, self.backend, servers) if self.api else None

    def samples(self, route, started, ended, offset):
        """Per-request samples keyed by the baseline's and canary's names, or None without such a source."""
        if self.lb:
            return self.lb.request_samples(route, started, ended)
        if "haproxy_log" in self.sources:
            return parse_lines(self.log_lines(started, ended, offset), self.backend)
        return None

    def readable_counters(self, route):
        """counters(), or {"unreachable": why} when the LB does not answer (a restart): that window is
        discarded and measured again, never judged on half the data nor failed outright."""
        try:
            return self.counters(route)
        except (LBUnreachable, RuntimeAPIError) as exc:
            return {"unreachable": exc.msg}

    def measure(self, seconds):
        """One measurement: every route over the same interval (snapshots before and after it, synthetic
        requests and the containers watched during it), then the sources that belong to no route
        (Prometheus, probes), and the figures of each color."""
        start_snaps = {route: self.readable_counters(route) for route in self.routes}
        log_offset = self.log_offset()
        watch = self.container_watch()
        started = utc_now()
        probes = self.synthetic_probes(seconds)
        try:
            self.sleep(seconds)
        finally:
            synthetic = probes.stop() if probes else None
        ended = utc_now()
        end_snaps = {route: self.readable_counters(route) for route in self.routes}
        metrics, resets, counts, samples = [], [], {}, {}
        for route in self.routes:
            route_metrics, route_resets, counts[route], samples[route] = self.judge_route(
                route, start_snaps[route], end_snaps[route], started, ended, log_offset
            )
            if route is not None:
                route_metrics = [{"route": route, **m} for m in route_metrics]
                if len(self.routes) > 1:
                    route_resets = [f"route {route}: {r}" for r in route_resets]
            metrics += route_metrics
            resets += route_resets
        figure_samples = samples
        discarded = any(m.get("unobserved") for m in metrics)
        if synthetic is not None and not discarded and all(sample is None for sample in samples.values()):
            # No LB figures to read: the synthetic answers themselves are the sample. Not when the LB did not
            # answer: that window is discarded (the probes failed for the LB's sake, not the colors').
            own = {
                role: {"requests": sent["sent"], "errors": sent["failed"], "latencies_ms": sent["latencies_ms"]}
                for role, sent in synthetic.items()
            }
            figure_samples = {None: own}
            metrics += [{**m, "sample": "synthetic"} for m in self.judge_samples(own, "synthetic")]
        self.last_samples = figure_samples  # what the pool keeps of the last measurement
        if "prometheus" in self.sources:
            metrics += self.prometheus(self.sources["prometheus"])
        if "http_probe" in self.sources:
            metrics += self.probe(self.sources["http_probe"])
        elapsed = (ended - started).total_seconds()
        figures = self.color_figures(figure_samples, synthetic, elapsed)
        self.check_marked(figures, synthetic)
        if watch is not None:
            container_metrics, container_figures = watch.end(
                requests={role: figures[role]["requests"] or 0 for role in ROLES}
            )
            metrics += container_metrics
            for role in ROLES:
                figures[role].update((container_figures or {}).get(role) or {})
        measurement = {
            "start": started.isoformat(),
            "end": ended.isoformat(),
            "metrics": metrics,
            "verdict": judge.verdict(metrics),
            "counter_resets": resets,
            # Per server (or color) of the one route or backend; per route, then color, with sources.lb.routes.
            "counts": counts if (self.sources.get("lb") or {}).get("routes") is not None else counts[self.routes[0]],
            "figures": figures,
        }
        if self.lb:
            measurement["route_figures"] = {
                route: {
                    role: self.named(
                        role,
                        {
                            **judge.figures(*totals(samples[route], role), elapsed),
                            **split_counts([samples[route]], role),
                        },
                    )
                    for role in ROLES
                }
                for route in self.routes
            }
        return measurement

    def check_marked(self, figures, synthetic):
        """Warn (once) when the LB answered synthetic requests but its log shows none marked: its format lacks
        the request line, so real and synthetic requests are judged together."""
        answered = sum(counts["answered"] for counts in (synthetic or {}).values())
        logged = [figures[role]["synthetic_requests"] for role in ROLES]
        if answered and None not in logged and not any(logged) and not self.unmarked_warned:
            self.unmarked_warned = True
            self.module.warn(
                f"canary gate: {answered} synthetic requests were answered but the LB's log marks none: without the"
                " request line in its log format (%{+Q}r, switchyard_lb_log_format) real and synthetic requests"
                " are judged together"
            )

    def named(self, role, figures):
        """Figures with the server's (or color's) name first."""
        return {"name": self.params[role], **figures}

    def color_figures(self, samples, synthetic, elapsed):
        """Per role (baseline, canary): the figures summed over the routes, and the synthetic requests."""
        out = {}
        observed = any(samples.values())
        for role in ROLES:
            requests, errors, latencies_ms = totals_over(samples.values(), role)
            measured = judge.figures(requests, errors, latencies_ms, elapsed)
            out[role] = self.named(
                role,
                {
                    # Nothing read the traffic (Prometheus or probes alone): unknown, not zero.
                    **(measured if observed else dict.fromkeys(measured)),
                    **split_counts(samples.values(), role),
                    **judge.synthetic_figures((synthetic or {}).get(role), requests),
                },
            )
        return out

    def judge_samples(self, samples, source):
        """Error rates and latencies of per-role samples ({"requests", "errors", "latencies_ms"}, and their
        "real" and "synthetic" parts from an LB log), like requests against like (judge.compare)."""
        return judge.compare(samples["canary"], samples["baseline"], self.limits, source)

    def judge_route(self, route, start_snap, end_snap, started, ended, log_offset):
        """The metrics, counter resets, counts and per-role sample ({"requests", "errors", "latencies_ms"},
        latencies None from counters alone; None without data) of one route (or of the one backend of
        haproxy_stats and haproxy_log: route None)."""
        stats_source, log_source = ("lb", "lb") if self.lb else ("haproxy_stats", "haproxy_log")
        metrics, resets = [], []
        counts = None
        unreachable = [s["unreachable"] for s in (start_snap, end_snap) if s and "unreachable" in s]
        if unreachable:
            why = f"the LB did not answer ({unreachable[0]}): restarted or down during the window"
            resets.append(why)
            discarded = judge.metric("counters", judge.INCONCLUSIVE, f"window discarded: {why}", source=stats_source)
            discarded["unobserved"] = True  # not "too little data": nothing could be seen (no hold policy applies)
            return [discarded], resets, None, None
        if start_snap is not None:
            counts, resets = delta(start_snap, end_snap)
            canary = counts[self.params["canary"]]
            if str(canary["status"]).split(" ", maxsplit=1)[0] in UNHEALTHY:
                metrics.append(
                    judge.metric(
                        "health",
                        judge.FAIL,
                        f"canary {self.params['canary']} is {canary['status']} (last check {canary['check_status']})",
                        source=stats_source,
                        canary=canary["status"],
                    )
                )
            if resets:
                metrics.append(
                    judge.metric(
                        "counters", judge.INCONCLUSIVE, "window discarded: " + "; ".join(resets), source=stats_source
                    )
                )
        samples = self.samples(route, started, ended, log_offset)
        sample = None
        if samples is not None:
            sample = {}
            for role in ROLES:
                server = samples.get(self.params[role])
                sample[role] = {
                    **counted(server),
                    "real": counted(server and server.real),
                    "synthetic": counted(server and server.synthetic),
                }
            metrics += self.judge_samples(sample, log_source)
        elif counts is not None and not resets:
            sample = {
                role: {
                    "requests": counts[self.params[role]]["requests"],
                    "errors": counts[self.params[role]]["errors"],
                    "latencies_ms": None,
                }
                for role in ROLES
            }
            metrics += judge.error_rates(
                counts[self.params["canary"]], counts[self.params["baseline"]], self.limits, stats_source
            )
        return metrics, resets, counts, sample

    def synthetic_probes(self, seconds):
        """The synthetic requests of this window, started (None without the source)."""
        source = self.sources.get("synthetic")
        if not source:
            return None
        values = source.get("values") or {}
        return SyntheticProbes(source, {role: values.get(role) or self.params[role] for role in ROLES}).start(seconds)

    def container_watch(self):
        """The containers of both colors, watched from now to the window's end (None without the source)."""
        source = self.sources.get("containers")
        if not source:
            return None
        watch = ContainerWatch(source, self.runner, self.limits)
        watch.begin()
        return watch

    # -- sources -------------------------------------------------------------------------------
    def log_offset(self):
        path = (self.sources.get("haproxy_log") or {}).get("path")
        return os.path.getsize(path) if path and os.path.exists(path) else 0

    def log_lines(self, started, ended, offset):
        log = self.sources["haproxy_log"]
        if log.get("path"):
            with open(log["path"], encoding="utf-8", errors="replace") as handle:
                handle.seek(offset)
                return handle.read().splitlines()
        _rc, out, err = self.runner.run(
            [
                log.get("docker_cli", "docker"),
                "logs",
                "--since",
                started.isoformat(),
                "--until",
                ended.isoformat(),
                log["container"],
            ],
            f"reading the logs of {log['container']}",
        )
        return (out + "\n" + err).splitlines()

    def prometheus(self, source):
        out = []
        for query in source.get("queries") or []:
            url = source["url"].rstrip("/") + "/api/v1/query?" + urlencode({"query": query["query"]})
            try:
                # The URL's credentials are sent with the request: Prometheus' 401 challenge (`Basic`, no
                # realm) is one urllib's handler does not answer, so waiting for it never authenticates.
                body = json.loads(open_url(url, timeout=source.get("timeout", 10), force_basic_auth=True).read())
            except Exception as exc:  # unreachable, an HTTP error, bad JSON: no data is inconclusive, never a pass
                out.append(
                    judge.metric(
                        query.get("name") or query["query"],
                        judge.INCONCLUSIVE,
                        f"Prometheus query failed: {scrub_url(exc, source['url'])}",
                        source="prometheus",
                        query=query["query"],
                    )
                )
                continue
            out.append(prometheus_metric(query, body))
        return out

    def probe(self, source):
        statuses, latencies, wrong = [], [], []
        expect = source.get("expect_status", 200)
        header = source.get("expect_header")
        for _attempt in range(source.get("count", 10)):
            began = time.monotonic()
            try:
                headers = source.get("headers") or {}
                response = open_url(
                    source["url"],
                    headers=headers,
                    timeout=source.get("timeout", 5),
                    # The URL's user:password sent up front (a challenge without a realm is otherwise never
                    # answered) - unless the operator gives an Authorization header of their own.
                    force_basic_auth=not any(name.lower() == "authorization" for name in headers),
                )
                statuses.append(response.getcode())
                response.read()
                if not header_matches(header, response.headers):
                    wrong.append(response.headers.get(header["name"]))
            except Exception as exc:  # HTTPError carries a code (and headers); anything else is no answer
                statuses.append(getattr(exc, "code", -1))
                answered = getattr(exc, "headers", None)
                if (
                    header
                    and answered is not None
                    and not re.search(header["pattern"], answered.get(header["name"]) or "")
                ):
                    wrong.append(answered.get(header["name"]))
            latencies.append((time.monotonic() - began) * 1000)
        bad = [s for s in statuses if s != expect]
        p95 = judge.percentile(latencies, 95)
        slow = source.get("max_latency_ms") is not None and p95 > source["max_latency_ms"]
        status = judge.FAIL if bad or slow or wrong else judge.PASS
        return [
            judge.metric(
                "http_probe",
                status,
                f"{len(statuses) - len(bad)}/{len(statuses)} probes answered {expect}, p95 {p95:.0f} ms"
                + (f" (limit {source['max_latency_ms']} ms)" if source.get("max_latency_ms") is not None else "")
                + (
                    f"; {len(wrong)} answered with {header['name']} {sorted(set(map(str, wrong)))}, "
                    f"not matching {header['pattern']!r}"
                    if wrong
                    else ""
                ),
                source="http_probe",
                canary=len(bad),
                canary_n=len(statuses),
                limit=source.get("max_latency_ms"),
            )
        ]
