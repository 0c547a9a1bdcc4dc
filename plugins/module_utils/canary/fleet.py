# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One gate over the hosts of a fleet that move through the same canary step together.

Each host's canary_gate result brings its own verdict and its pool (canary/pool.py). The fleet's verdict is the
worst of:
- the pooled judgement: per route, the canary's requests of every observed host against the baseline's of every
  observed host, judged by the same judge with the same thresholds - one gate over more requests, so hosts too
  quiet to be judged alone are judged together;
- each host's own verdict: a host's rollback rolls the fleet back, naming it - a bad host is diluted in a pool, so
  the pool alone would miss it. A host's hold counts as its pool's own_verdict: lifted when it held only for too
  little traffic (that traffic is judged in the pool), a hold naming the host otherwise (an LB not observed, a
  reload, a container still starting, Prometheus without data: nothing the pool can see);
- a host not observed - no result, skipped, the gate failed without a verdict, its last window discarded - holds the
  fleet and is listed in unobserved: fail closed, a pool without it is not the fleet's traffic, and the canary role
  never promotes such a hold by policy.
It only computes: check mode judges too, and nothing ever changes.
"""

from __future__ import annotations

import datetime

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge, pool
from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import compact, describe, evidence
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

ROLES = pool.ROLES
MSG_KEPT = 300  # characters of a failed gate's message kept in the reason


class FleetError(SwitchyardError):
    """Observations or parameters the fleet gate cannot judge with."""


def is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_side(where, side, nested=True):
    """A side of a pool's route: {"requests", "errors", "latency_ms", "synthetic"?}; raises FleetError naming it."""
    if not isinstance(side, dict):
        raise FleetError(f"{where}: a dict of requests, errors and latency_ms is expected, got {type(side).__name__}")
    for key in ("requests", "errors"):
        if not is_count(side.get(key)):
            raise FleetError(f"{where}.{key}: a count (an integer >= 0) is expected, got {side.get(key)!r}")
    if side["errors"] > side["requests"]:
        raise FleetError(f"{where}: errors={side['errors']} is more than requests={side['requests']}")
    pairs = side.get("latency_ms")
    if pairs is not None:
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and is_number(p[0]) and is_count(p[1]) for p in pairs
        ):
            raise FleetError(f"{where}.latency_ms: a histogram [[milliseconds, count], ...] is expected")
        if sum(p[1] for p in pairs) > side["requests"]:
            raise FleetError(f"{where}.latency_ms: more latencies than requests ({side['requests']})")
    if "synthetic" in side:
        if not nested:
            raise FleetError(f"{where}.synthetic: not expected here")
        check_side(f"{where}.synthetic", side["synthetic"], nested=False)
        synthetic = side["synthetic"]
        if synthetic["requests"] > side["requests"] or synthetic["errors"] > side["errors"]:
            raise FleetError(f"{where}.synthetic: more requests or errors than the side's own")


def check_pool(where, value):
    """A canary_gate result's pool; raises FleetError naming what is wrong."""
    if not isinstance(value, dict):
        raise FleetError(
            f"{where}: missing - pass each host's registered canary_gate result (a canary_gate of this collection's "
            "version returns pool)"
        )
    if value.get("version") != pool.VERSION:
        raise FleetError(f"{where}.version={value.get('version')!r}: this fleet_gate reads version {pool.VERSION}")
    if value.get("own_verdict") not in judge.VERDICT_RANK:
        raise FleetError(f"{where}.own_verdict={value.get('own_verdict')!r}: one of {', '.join(judge.VERDICT_RANK)}")
    routes = value.get("routes")
    if not isinstance(routes, list):
        raise FleetError(f"{where}.routes: a list is expected")
    seen = set()
    for index, entry in enumerate(routes):
        if not isinstance(entry, dict) or not (entry.get("route") is None or isinstance(entry.get("route"), str)):
            raise FleetError(f"{where}.routes[{index}]: a dict with route (a name, or null) is expected")
        if entry["route"] in seen:
            raise FleetError(f"{where}.routes: route {entry['route']!r} twice")
        seen.add(entry["route"])
        for role in ROLES:
            if entry.get(role) is not None:
                check_side(f"{where}.routes[{index}].{role}", entry[role])
    for key in ("start", "end"):
        if not isinstance(value.get(key), str):
            raise FleetError(f"{where}.{key}: the measurement's time (ISO 8601) is expected")


def read_observation(host, value):
    """(observation, None) of a host's registered canary_gate result, or (None, why) when the host was not observed
    (no result, skipped, the gate failed before a verdict). A value that is not a canary_gate result is an error
    naming observations.<host>, raised before anything is judged."""
    where = f"observations.{host}"
    if value is None:
        return None, "no observation (the gate did not run there)"
    if not isinstance(value, dict):
        raise FleetError(f"{where}: a registered canary_gate result (a dict) is expected, got {type(value).__name__}")
    if value.get("skipped"):
        return None, "its gate was skipped" + (
            f" ({value['skip_reason']})" if isinstance(value.get("skip_reason"), str) else ""
        )
    if "verdict" not in value:
        if value.get("failed") or value.get("unreachable"):
            said = str(value.get("msg") or "no message")[:MSG_KEPT]
            return None, f"its gate failed before a verdict: {said}"
        raise FleetError(f"{where}: not a canary_gate result (no verdict) - pass each host's registered result")
    if value["verdict"] not in judge.VERDICT_RANK:
        raise FleetError(f"{where}.verdict={value['verdict']!r}: one of {', '.join(judge.VERDICT_RANK)}")
    check_pool(f"{where}.pool", value.get("pool"))
    return value, None


def read_observations(observations, hosts=None):
    """({host: result}, {host: why not observed}) in the order of hosts (default: the observations' own)."""
    if not isinstance(observations, dict):
        raise FleetError("observations: a dict of host -> that host's registered canary_gate result is expected")
    if hosts is not None:
        extra = sorted(set(observations) - set(hosts))
        if extra:
            raise FleetError(f"observations: {', '.join(map(str, extra))} not in hosts ({', '.join(hosts)})")
        if len(set(hosts)) != len(hosts):
            raise FleetError(f"hosts={hosts}: each host once")
    names = list(hosts) if hosts is not None else list(observations)
    if not names:
        raise FleetError("observations: no host - give each host's canary_gate result (and hosts, the batch)")
    observed, unobserved = {}, {}
    for host in names:
        value, why = read_observation(host, observations.get(host))
        if why is None:
            observed[host] = value
        else:
            unobserved[host] = why
    return observed, unobserved


def subtract(whole, part):
    """The histogram of the whole's latencies without the part's (the real requests: all minus the synthetic)."""
    if whole is None or part is None:
        return None
    left = {}
    for value, count in whole:
        left[value] = left.get(value, 0) + count
    for value, count in part:
        left[value] = left.get(value, 0) - count
    return [[value, count] for value, count in sorted(left.items()) if count > 0]


def split(side):
    """(real, synthetic) pool sides of a side that tells them apart."""
    synthetic = side["synthetic"]
    real = {
        "requests": side["requests"] - synthetic["requests"],
        "errors": side["errors"] - synthetic["errors"],
        "latency_ms": subtract(side["latency_ms"], synthetic["latency_ms"]),
    }
    return real, synthetic


def merge(sides):
    """The judge's sample of one role over several hosts' pool sides: counts added, latencies together (None
    unless every host read latencies), the real and synthetic parts apart when every host's log told them apart."""
    latencies = None
    if all(side["latency_ms"] is not None for side in sides):
        latencies = sorted(v for side in sides for v in pool.expand(side["latency_ms"]))
    merged = {
        "requests": sum(side["requests"] for side in sides),
        "errors": sum(side["errors"] for side in sides),
        "latencies_ms": latencies,
    }
    if sides and all("synthetic" in side for side in sides):
        parts = [split(side) for side in sides]
        for index, name in enumerate(("real", "synthetic")):
            merged[name] = merge([part[index] for part in parts])
    return merged


def seconds(result):
    start, end = (datetime.datetime.fromisoformat(result["pool"][k]) for k in ("start", "end"))
    return max((end - start).total_seconds(), 0.0)


def route_entries(observed):
    """[route] in first-seen order, and {host: {route: entry}} of the hosts whose gate read the traffic."""
    order, entries = [], {}
    for host, result in observed.items():
        if result["pool"]["source"] is None:
            continue  # nothing read its traffic (Prometheus, probes alone): its own verdict is all there is
        entries[host] = {}
        for entry in result["pool"]["routes"]:
            entries[host][entry["route"]] = entry
            if entry["route"] not in order:
                order.append(entry["route"])
    return order, entries


def sample_figures(sample, rates):
    """Figures of one role of a pooled sample (judge.figures); the throughput is the hosts' added."""
    out = judge.figures(sample["requests"], sample["errors"], sample["latencies_ms"], 1)
    out["throughput_rps"] = round(sum(rates), 3)
    if "real" in sample:
        out.update({"real_requests": sample["real"]["requests"], "synthetic_requests": sample["synthetic"]["requests"]})
    return out


def common_name(observed, role):
    names = sorted(
        {str(((result.get("figures") or {}).get(role) or {}).get("name")) for result in observed.values()} - {"None"}
    )
    return ", ".join(names) if names else None


def judge_pool(observed, limits):
    """The pooled judgement: (metrics, unobserved {host: [why]}, per route {route: (samples, figures, hosts)})."""
    elapsed = {host: seconds(result) for host, result in observed.items()}
    order, entries = route_entries(observed)
    metrics, missing, routes = [], {}, {}
    for route in order:
        present, said = [], f"route {route}: " if route is not None else ""
        for host, by_route in entries.items():
            entry = by_route.get(route)
            if entry is None or entry["baseline"] is None or entry["canary"] is None:
                why = "not in its gate's routes" if entry is None else "its last window was discarded (nothing seen)"
                missing.setdefault(host, []).append(f"host {host}: {said}{why}")
                metrics.append(
                    judge.metric(
                        "observation",
                        judge.INCONCLUSIVE,
                        f"{host} not observed: {why}",
                        host=host,
                        unobserved=True,
                        **({"route": route} if route is not None else {}),
                    )
                )
            else:
                present.append(host)
        where = {"route": route} if route is not None else {}
        if not present:
            metrics.append(judge.metric("pool", judge.INCONCLUSIVE, "no host's traffic to pool", **where))
            continue
        samples = {role: merge([entries[h][route][role] for h in present]) for role in ROLES}
        sources = sorted({observed[h]["pool"]["source"] for h in present})
        source = sources[0] if len(sources) == 1 else "+".join(sources)
        judged = judge.compare(samples["canary"], samples["baseline"], limits, source)
        lacking = [h for h in present if entries[h][route]["canary"]["latency_ms"] is None]
        if lacking and len(lacking) < len(present):
            judged.append(
                judge.metric(
                    "latency",
                    judge.INCONCLUSIVE,
                    f"hosts {', '.join(lacking)} read no latencies (counters alone): no pooled latency without them",
                    source=source,
                )
            )
        pooled_over = f" (pooled over {len(present)} hosts: {', '.join(present)})"
        metrics += [{**where, **m, "reason": m["reason"] + pooled_over, "hosts": len(present)} for m in judged]
        figures = {
            role: {
                "name": common_name({h: observed[h] for h in present}, role),
                **sample_figures(
                    samples[role],
                    [entries[h][route][role]["requests"] / elapsed[h] for h in present if elapsed[h]],
                ),
            }
            for role in ROLES
        }
        routes[route] = (samples, figures, present)
    return metrics, missing, routes


def host_metric(host, result, counted_as):
    """The metric that carries a host's own verdict into the fleet's, or None when it lets the pool decide."""
    if result["verdict"] == "rollback":
        failing = [m for m in result.get("metrics") or [] if isinstance(m, dict) and m.get("status") == judge.FAIL]
        said = "; ".join(describe(m) for m in failing if "metric" in m and "reason" in m) or result.get("reason")
        return judge.metric("host", judge.FAIL, f"{host} rolled back on its own - {said}", host=host)
    if counted_as == "hold":
        return judge.metric(
            "host", judge.INCONCLUSIVE, f"{host} holds on its own - {result['pool'].get('own_reason')}", host=host
        )
    return None


def total_figures(routes, observed):
    """Per role the figures summed over the routes (as the gate's figures)."""
    out = {}
    for role in ROLES:
        parts = [samples[role] for samples, _figures, _hosts in routes.values()]
        merged = {
            "requests": sum(p["requests"] for p in parts),
            "errors": sum(p["errors"] for p in parts),
            "latencies_ms": None
            if not parts or any(p["latencies_ms"] is None for p in parts)
            else sorted(v for p in parts for v in p["latencies_ms"]),
        }
        if parts and all("real" in p for p in parts):
            merged["real"] = {"requests": sum(p["real"]["requests"] for p in parts)}
            merged["synthetic"] = {"requests": sum(p["synthetic"]["requests"] for p in parts)}
        rates = [f[role]["throughput_rps"] or 0 for _samples, f, _hosts in routes.values()]
        out[role] = {"name": common_name(observed, role), **sample_figures(merged, rates)}
    return out


def window(observed):
    starts = [r["pool"]["start"] for r in observed.values()]
    ends = [r["pool"]["end"] for r in observed.values()]
    if not starts:
        return {"start": None, "end": None}
    key = datetime.datetime.fromisoformat
    return {"start": min(starts, key=key), "end": max(ends, key=key)}


def prefixed(observed, key):
    return [f"host {host}: {said}" for host, result in observed.items() for said in result.get(key) or []]


def judge_fleet(observations, limits, hosts=None):
    """The fleet gate's result (without changed and invocation) - see fleet_gate's RETURN."""
    observed, unobserved = read_observations(observations, hosts)
    pooled_metrics, missing, routes = judge_pool(observed, limits)
    metrics, counted = [], {}
    for host, result in observed.items():
        # A rollback is the host's, whatever the pool; a hold counts as what remains once the pool judges its traffic.
        counted[host] = "rollback" if result["verdict"] == "rollback" else result["pool"]["own_verdict"]
        if host in missing and counted[host] != "rollback":
            continue  # its observation metrics already hold the fleet, naming it
        extra = host_metric(host, result, counted[host])
        if extra is not None:
            metrics.append(extra)
    for host, why in unobserved.items():
        metrics.append(
            judge.metric("observation", judge.INCONCLUSIVE, f"{host} not observed: {why}", host=host, unobserved=True)
        )
    # The hosts' own first: a host named is where to look.
    metrics += pooled_metrics
    verdict = judge.verdict(metrics)
    not_passed = sorted((m for m in metrics if m["status"] != judge.PASS), key=lambda m: m["status"] != judge.FAIL)
    judged = ", ".join(observed) or "none"
    reason = (
        "; ".join(describe(m) for m in not_passed)
        if not_passed
        else f"every host and the pool over {len(observed)} host(s) ({judged}) passed"
    )
    route_results = []
    for route, (_samples, figures, present) in routes.items():
        own = [m for m in metrics if m.get("route") == route and m["metric"] not in ("observation",)]
        route_verdict = judge.verdict(own)
        failing = sorted({m["metric"] for m in own if m["status"] != judge.PASS})
        route_results.append(
            {
                "route": route,
                "verdict": route_verdict,
                "reason": "; ".join(f"{m['metric']}: {m['reason']}" for m in own if m["status"] != judge.PASS)
                or f"every metric passed (pooled over {len(present)} hosts: {', '.join(present)})",
                "not_passed": failing,
                "figures": figures,
            }
        )
    route_results.sort(key=lambda r: -judge.VERDICT_RANK[r["verdict"]])
    figures = total_figures(routes, observed)
    span = window(observed)
    result = {
        "verdict": verdict,
        "reason": reason,
        "metrics": metrics,
        "figures": figures,
        "window": span,
        "measurements": [
            {
                "start": span["start"],
                "end": span["end"],
                "verdict": verdict,
                "figures": figures,
                **(
                    {"route_figures": {r["route"]: r["figures"] for r in route_results}}
                    if any(r["route"] is not None for r in route_results)
                    else {}
                ),
            }
        ],
        "counter_resets": prefixed(observed, "counter_resets"),
        "unobserved": [f"host {host}: {why}" for host, why in unobserved.items()]
        + [why for host in missing for why in missing[host]]
        + prefixed(observed, "unobserved"),
        "hosts": {host: observed[host]["verdict"] if host in observed else None for host in (hosts or observations)},
    }
    if any(r["route"] is not None for r in route_results):
        result["routes"] = route_results
    kept = evidence(result)
    kept["hosts"] = {
        host: {
            "verdict": observed[host]["verdict"] if host in observed else None,
            "reason": observed[host].get("reason") if host in observed else f"not observed: {unobserved[host]}",
            "counted_as": counted.get(host, "hold"),
            "figures": {
                role: compact(values)
                for role, values in ((observed.get(host) or {}).get("figures") or {}).items()
                if isinstance(values, dict)
            },
        }
        for host in result["hosts"]
    }
    result["evidence"] = kept
    del result["measurements"]
    return result


class FleetGate:
    """fleet_gate's manager: reads the observations, judges, and fails on a rollback when fail_on says so."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {}

    def run(self):
        if not judge.HAS_SCIPY:
            raise FleetError(missing_required_lib("scipy"))
        if not 0.5 <= self.params["confidence"] < 1:
            raise FleetError(f"confidence={self.params['confidence']}: use a probability between 0.5 and 1, e.g. 0.95")
        observations = self.params["observations"]
        hosts = self.params.get("hosts")
        # The echoed arguments say what was judged, not every host's whole result again (a registered canary_gate
        # result is large, and the fleet's result is registered at every step).
        summary = {
            host: {k: value.get(k) for k in ("verdict", "skipped", "failed") if k in value}
            if isinstance(value, dict)
            else value
            for host, value in (observations or {}).items()
        }
        self.result = {
            "changed": False,
            "invocation": {"module_args": {**self.params, "observations": summary}},
        }
        self.result.update(judge_fleet(observations, judge.limits_of(self.params), hosts))
        if self.result["verdict"] == "rollback" and self.params["fail_on"] == "rollback":
            failing = [m for m in self.result["metrics"] if m["status"] == judge.FAIL]
            raise FleetError("fleet gate: rollback - " + "; ".join(describe(m) for m in failing))
        return self.result
