# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The judgement: canary against baseline over the same window, plus absolute limits.

Every metric gets a status - pass, fail, or inconclusive when there is too little data - with
the values, sample sizes, test and p-value, limit and a sentence of reason. A failing metric
makes the verdict rollback; otherwise any inconclusive metric makes it hold; otherwise promote.
Too little data is never a promote and never a rollback, and the gate fails closed: missing data, a
value that could not be computed (NaN) or a comparison skipped for want of samples is inconclusive,
never a pass. With several routes each route is judged, and the verdict is the worst of them.
"""

from __future__ import annotations

import importlib.util
import math

# scipy is imported when a test runs (it takes a few hundred ms): a gate of probes alone never pays it.
HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def scipy_stats():
    from scipy import stats

    return stats


# The thresholds of a judgement (the doc fragment switchyard.release.gate_limits documents them with fail_on).
LIMITS = (
    "max_error_rate",
    "max_error_rate_increase",
    "max_p95_ms",
    "max_p99_ms",
    "max_latency_ratio",
    "latency_tolerance_ms",
    "min_requests",
    "min_samples",
    "confidence",
)


def limits_argument_spec():
    """The judge's thresholds and fail_on, shared by canary_gate and fleet_gate (doc fragment
    switchyard.release.gate_limits)."""
    return {
        "max_error_rate": {"type": "float", "default": 0.01},
        "max_error_rate_increase": {"type": "float", "default": 0.0},
        "max_p95_ms": {"type": "float"},
        "max_p99_ms": {"type": "float"},
        "max_latency_ratio": {"type": "float", "default": 1.5},
        "latency_tolerance_ms": {"type": "float", "default": 5},
        "confidence": {"type": "float", "default": 0.95},
        "min_requests": {"type": "int", "default": 300},
        "min_samples": {"type": "int", "default": 50},
        "fail_on": {"type": "str", "choices": ["rollback", "never"], "default": "rollback"},
    }


def limits_of(params):
    """The thresholds the judge compares with, from a module's parameters."""
    return {key: params[key] for key in LIMITS}


PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# Worst last: the verdict of several routes (or measurements) is the worst of theirs.
VERDICT_RANK = {"promote": 0, "hold": 1, "rollback": 2}


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def figures(requests, errors, latencies_ms, seconds):
    """One color's figures over a window: counts, error rate, latency percentiles (None without per-request
    latencies - counters alone have none) and throughput. Numbers only, never the samples."""
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else None,
        "p50_ms": percentile(latencies_ms, 50) if latencies_ms else None,
        "p95_ms": percentile(latencies_ms, 95) if latencies_ms else None,
        "p99_ms": percentile(latencies_ms, 99) if latencies_ms else None,
        "throughput_rps": round(requests / seconds, 3) if seconds > 0 else None,
    }


def synthetic_figures(counts, requests):
    """The synthetic requests of one color and their share of its sample (the LB counted those answered)."""
    counts = counts or {"sent": 0, "answered": 0, "failed": 0}
    share = min(1.0, counts["answered"] / requests) if requests else None
    return {
        "synthetic_sent": counts["sent"],
        "synthetic_answered": counts["answered"],
        "synthetic_failed": counts["failed"],
        "synthetic_share": round(share, 4) if share is not None else None,
    }


def metric(name, status, reason, **values):
    return {"metric": name, "status": status, "reason": reason, **values}


def error_rates(canary, baseline, limits, source):
    """canary/baseline: {"requests": n, "errors": k}."""
    out = []
    n_c, k_c, n_b, k_b = canary["requests"], canary["errors"], baseline["requests"], baseline["errors"]
    rate_c = k_c / n_c if n_c else None
    rate_b = k_b / n_b if n_b else None
    base = {"source": source, "canary": rate_c, "baseline": rate_b, "canary_n": n_c, "baseline_n": n_b}
    # At least one request on each side whatever min_requests says: no request is no data, never a pass.
    if n_c < max(1, limits["min_requests"]) or n_b < max(1, limits["min_requests"]):
        why = (
            f"too little traffic to judge errors: {n_c} canary and {n_b} baseline requests "
            f"(min_requests {limits['min_requests']} each)"
        )
        return [metric("error_rate", INCONCLUSIVE, why, limit=limits["max_error_rate"], **base)]
    if limits["max_error_rate"] is not None:
        failed = rate_c > limits["max_error_rate"]
        out.append(
            metric(
                "error_rate",
                FAIL if failed else PASS,
                f"canary error rate {rate_c:.2%} ({k_c}/{n_c}) {'above' if failed else 'within'} the limit "
                f"{limits['max_error_rate']:.2%}",
                limit=limits["max_error_rate"],
                test="threshold",
                **base,
            )
        )
    # One-sided Fisher exact test: is the canary's error rate greater than the baseline's?
    p_value = scipy_stats().fisher_exact([[k_c, n_c - k_c], [k_b, n_b - k_b]], alternative="greater")[1]
    increase = rate_c - rate_b
    significant = p_value < 1 - limits["confidence"]
    failed = significant and increase > limits["max_error_rate_increase"]
    out.append(
        metric(
            "error_rate_increase",
            FAIL if failed else PASS,
            f"canary {rate_c:.2%} vs baseline {rate_b:.2%} ({increase:+.2%}), one-sided Fisher p={p_value:.3g}"
            + (" : significantly worse" if failed else ""),
            limit=limits["max_error_rate_increase"],
            test="fisher_exact (one-sided)",
            p_value=p_value,
            **base,
        )
    )
    return out


def latencies(canary_ms, baseline_ms, limits, source):
    """Percentiles and a one-sided Mann-Whitney U test (is the canary slower?) from log samples."""
    out = []
    n_c, n_b = len(canary_ms), len(baseline_ms)
    min_samples = max(1, limits["min_samples"])  # no sample is no data, whatever min_samples says
    if n_c < min_samples:
        return [
            metric(
                "latency",
                INCONCLUSIVE,
                f"too few canary latency samples: {n_c} (min_samples {min_samples})",
                source=source,
                canary_n=n_c,
                baseline_n=n_b,
            )
        ]
    for q, limit_key in ((95, "max_p95_ms"), (99, "max_p99_ms")):
        value, base_value = percentile(canary_ms, q), percentile(baseline_ms, q)
        limit = limits[limit_key]
        if limit is None:
            continue
        failed = value > limit
        out.append(
            metric(
                f"p{q}_ms",
                FAIL if failed else PASS,
                f"canary p{q} {value} ms {'above' if failed else 'within'} the limit {limit} ms",
                source=source,
                canary=value,
                baseline=base_value,
                canary_n=n_c,
                baseline_n=n_b,
                limit=limit,
                test="threshold",
            )
        )
    if limits["max_latency_ratio"] is not None and n_b < min_samples:
        # The comparison with the baseline cannot be made: said, and not enough data (hold), like the
        # other guards - never a silent pass.
        out.append(
            metric(
                "latency_ratio",
                INCONCLUSIVE,
                f"latency comparison skipped: too few baseline latency samples: {n_b} "
                f"(min_samples {min_samples}; canary {n_c})",
                source=source,
                canary_n=n_c,
                baseline_n=n_b,
                limit=limits["max_latency_ratio"],
            )
        )
    elif limits["max_latency_ratio"] is not None:
        p95_c, p95_b = percentile(canary_ms, 95), percentile(baseline_ms, 95)
        ratio = p95_c / p95_b if p95_b else math.inf
        p_value = scipy_stats().mannwhitneyu(canary_ms, baseline_ms, alternative="greater").pvalue
        # %Ta is whole milliseconds: a fast service's p95 of 0 or 1 ms makes any ratio meaningless,
        # so a slower canary fails only when its p95 is also latency_tolerance_ms above the baseline's.
        tolerance = limits.get("latency_tolerance_ms") or 0
        failed = (
            p_value < 1 - limits["confidence"] and ratio > limits["max_latency_ratio"] and p95_c - p95_b > tolerance
        )
        out.append(
            metric(
                "latency_ratio",
                FAIL if failed else PASS,
                f"canary p95 {p95_c} ms vs baseline {p95_b} ms (x{ratio:.2f}, tolerance {tolerance:g} ms),"
                f" one-sided Mann-Whitney p={p_value:.3g}",
                source=source,
                canary=p95_c,
                baseline=p95_b,
                canary_n=n_c,
                baseline_n=n_b,
                limit=limits["max_latency_ratio"],
                test="mann_whitney_u (one-sided)",
                p_value=float(p_value),
            )
        )
    return out


def like_for_like(canary, baseline, enough):
    """("real" or "synthetic", canary's, baseline's) requests to compare; (None, canary, baseline) when the
    samples do not tell them apart (counters). Real traffic is split by weight and synthetic requests go equally
    to each color: mixed, a 10 % canary's sample is mostly synthetic and the baseline's mostly real - two request
    mixes. So the real requests when both colors have enough of them (enough(side)), else the synthetic ones
    (the same requests at the same rate on both sides), else the real ones (too few: inconclusive)."""
    if "real" not in canary or "real" not in baseline:
        return None, canary, baseline
    if enough(canary["real"]) and enough(baseline["real"]):
        return "real", canary["real"], baseline["real"]
    if canary["synthetic"]["requests"] or baseline["synthetic"]["requests"]:
        return "synthetic", canary["synthetic"], baseline["synthetic"]
    return "real", canary["real"], baseline["real"]


def compare(canary, baseline, limits, source):
    """Error rates and latencies of two colors' samples ({"requests", "errors", "latencies_ms"}, with "real"
    and "synthetic" parts when the LB's log tells them apart), each over like requests: every metric then says
    which in `sample`, and its reason why synthetic requests were compared."""
    min_requests, min_samples = max(1, limits["min_requests"]), max(1, limits["min_samples"])

    def said(kind, metrics, real_c, real_b, what):
        if kind is None:
            return metrics
        note = f" (synthetic requests compared: {real_c} canary and {real_b} baseline real {what}, too few)"
        return [{**m, "sample": kind, "reason": m["reason"] + (note if kind == "synthetic" else "")} for m in metrics]

    kind, c, b = like_for_like(canary, baseline, lambda side: side["requests"] >= min_requests)
    out = said(
        kind,
        error_rates(
            {"requests": c["requests"], "errors": c["errors"]},
            {"requests": b["requests"], "errors": b["errors"]},
            limits,
            source,
        ),
        *(side.get("real", {}).get("requests") for side in (canary, baseline)),
        "requests",
    )
    if kind == "synthetic":
        out += real_limits(canary["real"], limits, source, min_requests, min_samples, "requests")
    if canary.get("latencies_ms") is not None:
        kind, c, b = like_for_like(canary, baseline, lambda side: len(side["latencies_ms"]) >= min_samples)
        out += said(
            kind,
            latencies(c["latencies_ms"], b["latencies_ms"] or [], limits, source),
            *(len(side.get("real", {}).get("latencies_ms") or []) for side in (canary, baseline)),
            "latency samples",
        )
        if kind == "synthetic":
            out += real_limits(canary["real"], limits, source, min_requests, min_samples, "latencies")
    return out


def real_limits(real, limits, source, min_requests, min_samples, what):
    """The absolute limits (max_error_rate; max_p95_ms, max_p99_ms) on the canary's REAL requests, when the
    comparison with the baseline had to use the synthetic ones (the baseline had too few real requests - a
    blue/green switch leaves it none): what users get from the candidate is judged too, not only the synthetic
    path. Too few real requests: nothing added (the synthetic comparison stands)."""
    marked = {"sample": "real", "source": source}
    if what == "requests":
        n, k = real["requests"], real["errors"]
        if n < min_requests or limits["max_error_rate"] is None:
            return []
        rate, failed = k / n, k / n > limits["max_error_rate"]
        said = f"canary's real requests: error rate {rate:.2%} ({k}/{n}) {'above' if failed else 'within'} the limit "
        return [
            metric(
                "real_error_rate",
                FAIL if failed else PASS,
                said + f"{limits['max_error_rate']:.2%}",
                canary=rate,
                canary_n=n,
                limit=limits["max_error_rate"],
                test="threshold",
                **marked,
            )
        ]
    samples = real.get("latencies_ms") or []
    if len(samples) < min_samples:
        return []
    out = []
    for q, limit_key in ((95, "max_p95_ms"), (99, "max_p99_ms")):
        limit = limits[limit_key]
        if limit is None:
            continue
        value = percentile(samples, q)
        failed = value > limit
        out.append(
            metric(
                f"real_p{q}_ms",
                FAIL if failed else PASS,
                f"canary's real requests: p{q} {value} ms {'above' if failed else 'within'} the limit {limit} ms",
                canary=value,
                canary_n=len(samples),
                limit=limit,
                test="threshold",
                **marked,
            )
        )
    return out


def verdict(metrics):
    statuses = [m["status"] for m in metrics]
    if FAIL in statuses:
        return "rollback"
    if INCONCLUSIVE in statuses or not statuses:
        return "hold"
    return "promote"


def worst(verdicts):
    """rollback > hold > promote; no verdict at all is hold (nothing was judged)."""
    return max(verdicts, key=VERDICT_RANK.__getitem__, default="hold")


def value_check(name, value, minimum, maximum, **values):
    """A measured value against optional min/max limits. NaN (a value that could not be computed, such as
    0/0 in PromQL) or None is inconclusive; an infinite value fails on the side of a limit it crosses and
    is otherwise inconclusive - neither is ever a pass."""
    limit = {"min": minimum, "max": maximum}
    if value is None or math.isnan(value):
        return metric(
            name,
            INCONCLUSIVE,
            f"{name} could not be computed ({'no value' if value is None else 'NaN'}): no data to judge",
            canary=None,
            limit=limit,
            **values,
        )
    too_high = maximum is not None and value > maximum
    too_low = minimum is not None and value < minimum
    if not (too_high or too_low) and math.isinf(value):
        return metric(
            name, INCONCLUSIVE, f"{name} = {value:g}: not a value to judge", canary=str(value), limit=limit, **values
        )
    return metric(
        name,
        FAIL if too_high or too_low else PASS,
        f"{name} = {value:g}" + (f", above {maximum}" if too_high else "") + (f", below {minimum}" if too_low else ""),
        canary=value if math.isfinite(value) else str(value),
        limit=limit,
        **values,
    )


def combine(measurements, failure_limit, inconclusive_limit, on_inconclusive_limit):
    """Several measurements of one window -> one verdict, and why."""
    failures = sum(1 for m in measurements if m["verdict"] == "rollback")
    inconclusive = sum(1 for m in measurements if m["verdict"] == "hold")
    if failures > failure_limit:
        return "rollback", f"{failures} failed measurement(s), more than failure_limit={failure_limit}"
    if inconclusive > inconclusive_limit:
        return on_inconclusive_limit, (
            f"{inconclusive} inconclusive measurement(s), more than inconclusive_limit={inconclusive_limit}"
        )
    if failures or inconclusive:
        return "hold", f"{failures} failed and {inconclusive} inconclusive measurement(s), within the limits"
    return "promote", f"all {len(measurements)} measurement(s) passed"


def measurement_verdict(measurement, route=None):
    """The verdict of one measurement for one route: its own metrics and those of no route (probes,
    Prometheus), which every route sees. route None: every metric."""
    if route is None:
        return measurement["verdict"]
    return verdict([m for m in measurement["metrics"] if m.get("route") in (None, route)])


def combine_routes(measurements, routes, failure_limit, inconclusive_limit, on_inconclusive_limit):
    """Several measurements of one window over several routes -> one verdict, its reason, and each route's
    verdict and reason (worst first). Each route is combined over the measurements as a single route would
    be; the verdict is the worst (rollback > hold > promote), its reason names the routes that gave it."""
    per_route = []
    for route in routes:
        own = [{"verdict": measurement_verdict(m, route)} for m in measurements]
        route_verdict, route_reason = combine(own, failure_limit, inconclusive_limit, on_inconclusive_limit)
        failing = sorted(
            {m["metric"] for m in measurements[-1]["metrics"] if m.get("route") == route and m["status"] != PASS}
        )
        per_route.append({"route": route, "verdict": route_verdict, "reason": route_reason, "not_passed": failing})
    per_route.sort(key=lambda r: -VERDICT_RANK[r["verdict"]])
    overall = worst(r["verdict"] for r in per_route)
    reason = "; ".join(f"route {r['route']}: {r['verdict']} - {r['reason']}" for r in per_route)
    return overall, reason, per_route
