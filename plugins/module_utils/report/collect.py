# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data of a release report, from the ledger entry of the release and the LB's request log.

Pure Python on the Docker host (no plotting library): the JSON it returns is the machine-readable
report, and render.py draws the HTML from it on the controller. Per-color figures come from the
gate's own record when the ledger has them (the numbers the gate judged), and are otherwise computed
from the LB's log with the gate's own function (canary/judge.py figures), so they match by construction.
"""

from __future__ import annotations

import datetime

from ansible_collections.switchyard.release.plugins.module_utils.canary.judge import figures, percentile
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS

SCHEMA = 1
# The figures of the container sources (and the synthetics) the gate may keep besides the LB's.
EXTRA_FIGURES = (
    "synthetic_sent",
    "synthetic_answered",
    "synthetic_failed",
    "synthetic_share",
    "cpu_seconds",
    "cpu_percent",
    "memory_bytes",
    "restarts",
    "log_errors",
)


def epoch(stamp):
    """Seconds since the epoch of an ISO 8601 time of the ledger (`...Z` or with an offset); None stays None."""
    if not stamp:
        return None
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace("+00:00", "Z")


def release_period(entry, now):
    """(start, end) in epoch seconds of a release: from its start to its end (now while it runs)."""
    start = epoch(entry.get("started_at")) or now
    end = epoch(entry.get("finished_at")) or now
    last_step = max((epoch(s.get("updated_at") or s.get("at")) or start for s in entry.get("steps", [])), default=start)
    return start, max(end, last_step, start)


def figures_of(records, color, start, end):
    """One color's figures over [start, end) from (at, route, color, status, latency) records."""
    statuses, latencies = [], []
    for at, _route, c, status, latency in records:
        if c == color and start <= at < end:
            statuses.append(status)
            if latency is not None:
                latencies.append(latency)
    errors = sum(1 for s in statuses if s >= 500 or s < 0)
    return figures(len(statuses), errors, latencies, end - start)


def gate_figures(verdict):
    """{color: figures} the gate recorded with a verdict, or {}: a `figures` object keyed by side
    (baseline, canary: each names its color), by color, or by route then color
    (the first route's, in the order of the verdict's routes)."""
    recorded = (verdict or {}).get("figures")
    if not isinstance(recorded, dict) or not recorded:
        return {}
    # The gate's own shape: keyed by side (baseline, canary), the color in each side's name.
    sides = {
        f["name"]: f
        for side, f in recorded.items()
        if side in ("baseline", "canary") and isinstance(f, dict) and f.get("name") in COLORS
    }
    if sides:
        return sides
    if any(c in recorded for c in COLORS):
        return {c: f for c, f in recorded.items() if c in COLORS and isinstance(f, dict)}
    routes = [r.get("route") for r in verdict.get("routes", [])] or sorted(recorded)
    for route in routes:
        per_color = recorded.get(route)
        if isinstance(per_color, dict) and any(c in per_color for c in COLORS):
            return {c: f for c, f in per_color.items() if c in COLORS and isinstance(f, dict)}
    return {}


def _step_end(steps, index, period_end):
    for later in steps[index + 1 :]:
        at = epoch(later.get("at"))
        if at is not None:
            return at
    return period_end


def failing_metrics(verdict):
    """The measurements of a verdict that did not pass (rollback first), with their numbers."""
    metrics = [m for m in (verdict or {}).get("metrics", []) if m.get("status") not in (None, "pass")]
    return sorted(metrics, key=lambda m: m.get("status") != "fail")


def step_report(step, index, steps, records, period_end, entry):
    """One step: its window, weights, per-color figures, and the gate's verdict with its numbers."""
    verdict = step.get("verdict")
    window = (verdict or {}).get("window") or {}
    start = epoch(window.get("start")) or epoch(step.get("at"))
    end = epoch(window.get("end")) or _step_end(steps, index, period_end)
    end = max(end, start)
    recorded = gate_figures(verdict)
    colors = {}
    for color in COLORS:
        if color in recorded:
            colors[color] = {**figures_of(records, color, start, end), **recorded[color], "source": "gate"}
        else:
            colors[color] = {**figures_of(records, color, start, end), "source": "lb_log"}
    if verdict:
        outcome = verdict.get("verdict")
    elif step.get("failed"):
        outcome = "failed"
    elif step.get("gate") == "disabled":
        outcome = "not judged"
    else:
        outcome = "done"
    report = {
        "name": step.get("name"),
        "at": step.get("at"),
        "updated_at": step.get("updated_at"),
        "who": entry.get("owner"),
        "weights": step.get("weights"),
        "outcome": outcome,
        "window": {"start": iso(start), "end": iso(end), "seconds": round(end - start, 3)},
        "colors": colors,
        "gate": None,
    }
    if verdict:
        report["gate"] = {
            "verdict": verdict.get("verdict"),
            "reason": verdict.get("reason"),
            "routes": verdict.get("routes", []),
            "metrics": verdict.get("metrics", []),
            "failing": failing_metrics(verdict),
        }
    return report


def series(records, start, end, bucket):
    """Per bucket of `bucket` seconds over [start, end): each color's requests/s, error rate and p95, and
    its share of the requests (the traffic share as served)."""
    count = max(1, int((end - start) // bucket) + 1)
    per = {c: [[] for _bucket in range(count)] for c in COLORS}
    for at, _route, color, status, latency in records:
        if start <= at < start + count * bucket and color in per:
            per[color][int((at - start) // bucket)].append((status, latency))
    out = {"bucket_s": bucket, "t": [iso(start + i * bucket) for i in range(count)], "colors": {}}
    totals = [sum(len(per[c][i]) for c in COLORS) for i in range(count)]
    for color in COLORS:
        rps, error_rate, p95, share = [], [], [], []
        for i, bucket_records in enumerate(per[color]):
            n = len(bucket_records)
            errors = sum(1 for s, _l in bucket_records if s >= 500 or s < 0)
            latencies = [lat for _s, lat in bucket_records if lat is not None]
            rps.append(round(n / bucket, 3))
            error_rate.append(round(errors / n, 4) if n else None)
            p95.append(percentile(latencies, 95) if latencies else None)
            share.append(round(100.0 * n / totals[i], 2) if totals[i] else None)
        out["colors"][color] = {"rps": rps, "error_rate": error_rate, "p95_ms": p95, "share_percent": share}
    return out


def images_of(entry):
    """The images of the release with their digests, and the signature status where they were verified."""
    verified = {}
    for step in entry.get("steps", []):
        if step.get("name") == "verify":
            verified = step.get("verified") or {}
            required = step.get("signatures_required")
            break
    else:
        required = None
    out = []
    for service, pinned in sorted((entry.get("images") or {}).items()):
        record = verified.get(service) or {}
        signature = record.get("signature") or {}
        if signature.get("verified"):
            status = "verified"
        elif required is False:
            status = "not required"
        else:
            status = "not verified"
        out.append(
            {
                "service": service,
                "image": pinned,
                "reference": record.get("reference"),
                "digest": record.get("digest") or (pinned.split("@", 1)[1] if "@" in pinned else None),
                "signature": status,
                "signing_key_sha256": signature.get("key_sha256"),
                "sbom": record.get("sbom"),
            }
        )
    return out


MIGRATION_KEYS = ("migrations_applied", "migrations_contracted", "backfill", "backfills", "migrations")


def migrations_of(entry, period_end):
    """The steps that changed the schema, with their duration (to the next step) and what they recorded
    (backfill rows and rates when the step keeps them)."""
    steps = entry.get("steps", [])
    out = []
    for index, step in enumerate(steps):
        if not any(step.get(k) for k in MIGRATION_KEYS):
            continue
        start = epoch(step.get("at"))
        end = _step_end(steps, index, period_end)
        record = {"step": step.get("name"), "at": step.get("at")}
        record["duration_s"] = step.get("duration_s", round(end - start, 3) if start is not None else None)
        record.update({k: step[k] for k in MIGRATION_KEYS if step.get(k)})
        out.append(record)
    return out


def before_after(entry, records, now, before_s):
    """The color live before the release, over the before_s seconds before it began, against the release's
    color from its promotion to now, the report's horizon (only for a promoted release)."""
    start = epoch(entry.get("started_at")) or now
    old, new = entry.get("from_color"), entry.get("color")
    out = {"before": None, "after": None}
    if old:
        out["before"] = {
            "color": old,
            "start": iso(start - before_s),
            "end": iso(start),
            "seconds": before_s,
            "figures": figures_of(records, old, start - before_s, start),
        }
    promoted = epoch(entry.get("finished_at")) if entry.get("outcome") in ("promoted", "done") else None
    if new and promoted is not None:
        out["after"] = {
            "color": new,
            "start": iso(promoted),
            "end": iso(now),
            "seconds": round(max(0.0, now - promoted), 3),
            "figures": figures_of(records, new, promoted, max(now, promoted)),
        }
    return out


def failed(entry, run):
    """Whether the release did not end well: by the ledger's outcome, or by the run's own summary - a ledger
    entry still `running` (the run lost the lock, or writing the failure failed) is no success."""
    run = run or {}
    return (
        entry.get("outcome") in FAILED_OUTCOMES or run.get("outcome") in FAILED_OUTCOMES or bool(run.get("failed_task"))
    )


FAILED_OUTCOMES = ("failed", "rolled_back", "abandoned")


def failure_of(entry, steps, run):
    """A release that did not end well: the step that failed and the metrics that made it fail."""
    if not failed(entry, run):
        return None
    failed_step = next((s for s in reversed(steps) if s["gate"] and s["gate"]["verdict"] != "promote"), None)
    if failed_step is None:
        failed_step = next((s for s in reversed(steps) if s["outcome"] == "failed"), steps[-1] if steps else None)
    metrics = failed_step["gate"]["failing"] if failed_step and failed_step["gate"] else []
    outcome = entry.get("outcome")
    return {
        # What the banner says: the ledger's outcome, or the run's when the ledger never got the failure.
        "outcome": outcome if outcome in FAILED_OUTCOMES else (run or {}).get("outcome") or "failed",
        "step": failed_step["name"] if failed_step else None,
        "metrics": metrics,
        "metric_names": sorted({m.get("metric") for m in metrics if m.get("metric")}),
        "reason": entry.get("reason"),
        "task": (run or {}).get("failed_task"),
        "message": (run or {}).get("failure"),
    }


def horizon_of(entry, now, before_s):
    """The report's end: before_s seconds after the release ended (now, while it runs or when that is
    sooner). Nothing after it counts, so a report made again later on an unchanged release is the same."""
    _start, end = release_period(entry, now)
    return min(now, end + before_s) if epoch(entry.get("finished_at")) else end


def collect(app, entry, records, now, before_s=60, bucket=None, run=None, log=None):
    """The report of the release `entry` (a ledger entry) from the LB's request records (all routes, time
    order) read over [start - before_s, horizon_of()]; run is the role's summary of the Ansible run, log
    what was read of the LB's log (its span, the records dropped)."""
    start, end = release_period(entry, now)
    horizon = max(horizon_of(entry, now, before_s), end)
    steps = entry.get("steps", [])
    reports = [step_report(s, i, steps, records, end, entry) for i, s in enumerate(steps)]
    chart_start, chart_end = start - before_s, horizon
    bucket = bucket or max(1.0, round((chart_end - chart_start) / 120.0))
    release = {k: entry.get(k) for k in ("id", "kind", "version", "color", "from_color", "owner", "outcome", "reason")}
    release.update(started_at=entry.get("started_at"), finished_at=entry.get("finished_at"))
    release["duration_s"] = round(end - start, 3)
    return {
        "schema": SCHEMA,
        "app": app,
        "generated_at": iso(now),
        "release": release,
        "steps": reports,
        "verdicts": entry.get("verdicts", []),
        "series": series(records, chart_start, chart_end, bucket),
        "images": images_of(entry),
        "migrations": migrations_of(entry, end),
        "before_after": before_after(entry, records, horizon, before_s),
        "failure": failure_of(entry, reports, run),
        "requests_read": len(records),
        "log": log or {},
        "run": run or {},
    }
