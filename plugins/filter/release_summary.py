# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_summary: the few lines that answer "what runs where" - per color its version, digests, state,
weight, health and sessions on the LB, its containers; the lock; the last releases and why they ended; the last
rollback drill; the schema level; the latest report - decided here rather than in Jinja, so that status.yml prints them
first and the ledger's JSON only at -v. The lock's token is never read."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.release.plan import (
    last_release,
    live_schema_level,
    paused_after,
)

COLORS = ("blue", "green")


def _digest(image, length=12):
    """repository@sha256:<hex> -> sha256:<first hex>; a tag (not pinned) as it is."""
    _repo, at, digest = str(image or "").partition("@")
    if not at:
        return str(image or "")
    algo, _colon, hexa = digest.partition(":")
    return f"{algo}:{hexa[:length]}"


def _lb(servers, color):
    """The color on every route of the LB: 'weight 230 (90 %), UP, 3 sessions' (per route when several)."""
    parts = []
    for route, by_color in sorted((servers or {}).items()):
        view = (by_color or {}).get(color)
        if not isinstance(view, dict):
            continue
        health = view.get("status") or ("UP" if view.get("up") else "DOWN")
        state = view.get("state")
        said = f"weight {view.get('weight')}, {health}" + (f" ({state})" if state and state != "ready" else "")
        said += f", {int(view.get('sessions') or 0)} sessions"
        parts.append(said if len(servers) == 1 else f"{route}: {said}")
    return "; ".join(parts) if parts else "not on the LB"


def _labels(container):
    labels = container.get("Labels") or ""
    if isinstance(labels, dict):
        return labels
    return dict(item.partition("=")[::2] for item in str(labels).split(",") if item)


def _containers(containers, color):
    """'containers 1/1 healthy' for the color's containers (docker ps --format json)."""
    mine = [c for c in containers or [] if isinstance(c, dict) and _labels(c).get("io.switchyard.color") == color]
    if not mine:
        return "no containers"
    running = [c for c in mine if c.get("State") == "running"]
    healthy = [c for c in running if "(healthy)" in str(c.get("Status") or "")]
    unhealthy = [c for c in running if "(unhealthy)" in str(c.get("Status") or "")]
    said = f"containers {len(running)}/{len(mine)} running, {len(healthy)} healthy"
    return said + (f", {len(unhealthy)} unhealthy" if unhealthy else "")


def _lock(lock, lock_state):
    if not lock or lock_state == "free":
        return "lock: free"
    holder = f"{lock.get('owner')} (release {lock.get('release_id')})"
    if lock_state == "expired":
        return f"lock: expired - was held by {holder}, expired at {lock.get('expires_at')}: the next run takes it over"
    return f"lock: held by {holder} until {lock.get('expires_at')}"


def _recreate(entry):
    """' (recreate: outage 8.2 s, healthy in 7.9 s)' of a recreate (the outage once it resumed), else ''."""
    if entry.get("strategy") != "recreate":
        return ""
    step = next((s for s in entry.get("steps") or [] if isinstance(s, dict) and s.get("name") == "recreate"), None)
    if not step or step.get("outage_ms") is None:
        return " (recreate)"
    outage, health = float(step["outage_ms"]) / 1000, float(step.get("health_s") or 0)
    return f" (recreate: outage {outage:.1f} s, healthy in {health:.1f} s)"


def _release(entry):
    # A recreate says so with its outage (_recreate).
    strategy = f" ({entry['strategy']})" if entry.get("strategy") not in (None, "canary", "recreate") else ""
    said = f"{entry.get('id')}  {entry.get('kind')}{strategy} {entry.get('version')} on {entry.get('color')}"
    said += _recreate(entry)
    said += f": {entry.get('outcome')}"
    if entry.get("reason"):
        said += f" - {entry['reason']}"
    return said + (f" ({entry['finished_at']})" if entry.get("finished_at") else "")


def _variant(label, figures, version):
    if not isinstance(figures, dict):
        return f"{label} {version}: no figures"
    rate = figures.get("error_rate")
    said = f"{label} {figures.get('name')} {version}: {figures.get('requests')} requests"
    said += f", error rate {rate:.2%}" if isinstance(rate, (int, float)) else ", error rate -"
    return said + (f", p95 {figures['p95_ms']} ms" if figures.get("p95_ms") is not None else "")


def _experiment(ledger, entry, lock_state):
    """The running A/B experiment's lines (what runs on each variant, and the gate's last figures), or []."""
    if not entry or entry.get("strategy") != "ab" or entry.get("outcome") != "running":
        return []
    experiment = entry.get("experiment") or {}
    paused = paused_after(entry, lock_state)
    said = (
        f"A/B experiment {entry.get('id')}: variant B {entry.get('version')} on {entry.get('color')} for "
        f"{experiment.get('share', '?')} % of users ({experiment.get('key', '?')}), since {entry.get('started_at')}"
    )
    if paused is not None:
        lines = [said]
    elif lock_state == "held":
        lines = [said + " - a run is moving it now"]
    else:
        lines = [said + " - its run ended before it was left running (interrupted): release.yml again, or rollback.yml"]
    judged = [s for s in entry.get("steps") or [] if isinstance(s.get("verdict"), dict)]
    if judged:
        verdict = judged[-1]["verdict"]
        figures = verdict.get("figures") or {}
        a_version = ((ledger.get("colors") or {}).get(entry.get("from_color")) or {}).get("version")
        lines.append(f"  last verdict {verdict.get('verdict')} at {judged[-1].get('at')}: {verdict.get('reason')}")
        lines.append(f"  {_variant('A', figures.get('baseline'), a_version)}")
        lines.append(f"  {_variant('B', figures.get('canary'), entry.get('version'))}")
    return lines


def _drill(entry):
    """'last drill: <id> 10 % of new traffic to blue (v1) and back to green - RTO 40 ms, back 12 ms, 0 failed
    requests: done (<when>)'."""

    def ms(value):
        return f"{float(value):.0f} ms" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"

    share = "all new traffic" if entry.get("full") else f"{entry.get('percent')} % of new traffic"
    failed = entry.get("failed_requests")
    said = (
        f"last drill: {entry.get('id')} {share} to {entry.get('to')} ({entry.get('version') or '?'}) and back to "
        f"{entry.get('from')} - RTO {ms(entry.get('rto_ms'))}, back {ms(entry.get('back_ms'))}, "
        f"{failed if failed is not None else 'unknown'} failed requests: {entry.get('outcome')}"
    )
    if entry.get("reason"):
        said += f" - {entry['reason']}"
    return said + (f" ({entry['recorded_at']})" if entry.get("recorded_at") else "")


def _schema(ledger):
    migrations = ledger.get("migrations") or {}
    level = live_schema_level(ledger)
    said = f"schema: level {level} (the live color's)" if level else "schema: level unknown (no promotion recorded it)"
    applied = [str(v) for v in migrations.get("applied") or []]
    contracted = [str(v) for v in migrations.get("contracted") or []]
    return f"{said}; applied {', '.join(applied) or 'none'}; contracted {', '.join(contracted) or 'none'}"


def _newest(files):
    """The path of the newest file (by mtime) of an ansible.builtin.find result's files, or ''."""
    found = [f for f in files or [] if isinstance(f, dict) and f.get("path")]
    return max(found, key=lambda f: (float(f.get("mtime") or 0), f["path"]))["path"] if found else ""


def _base(path):
    return str(path or "").rsplit("/", 1)[-1]


def release_summary(ledger, lock=None, lock_state="free", servers=None, containers=None, reports=None, last=5):
    """lines (to print), live (color, version, images) and report (host and controller paths, '' when none)."""
    if not isinstance(ledger, dict):
        raise AnsibleFilterError(f"release_summary: expected the ledger (a mapping), got {type(ledger).__name__}")
    if lock_state not in ("free", "held", "expired"):
        raise AnsibleFilterError(f"release_summary: lock_state must be free, held or expired, got {lock_state!r}")
    try:
        last = int(last)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"release_summary: last must be a number of releases, got {last!r}") from None
    app = ledger.get("app") or "the application"
    live = ledger.get("live") or ""
    colors = {n: c for n, c in (ledger.get("colors") or {}).items() if isinstance(c, dict)}
    live_color = colors.get(live) or {}
    if live:
        lines = [f"{app}: live {live} {live_color.get('version')}, previous {ledger.get('previous') or 'none'}"]
    else:
        lines = [f"{app}: nothing live (never released on this host)"]
    for name in sorted(colors, key=lambda n: (n != live, COLORS.index(n) if n in COLORS else len(COLORS), n)):
        color = colors[name]
        images = ", ".join(f"{s} {_digest(i)}" for s, i in sorted((color.get("images") or {}).items())) or "no images"
        lines.append(
            f"  {name}: {color.get('state')} {color.get('version')} ({images}) - {_lb(servers, name)} - "
            f"{_containers(containers, name)}"
        )
    lines.append(_lock(lock, lock_state))
    lines.extend(_experiment(ledger, last_release(ledger), lock_state))
    releases = [r for r in ledger.get("releases") or [] if isinstance(r, dict)][-last:] if last > 0 else []
    lines.append(f"last {len(releases)} releases:" if releases else "no releases yet")
    lines.extend(f"  {_release(r)}" for r in reversed(releases))
    drills = [d for d in ledger.get("drills") or [] if isinstance(d, dict)]
    if drills:
        lines.append(_drill(drills[-1]))
    lines.append(_schema(ledger))
    reports = reports or {}
    host = _newest(reports.get("host"))
    # The controller's copy of that very report (fetched under switchyard_report_dir), else its newest.
    named = [
        f
        for f in reports.get("controller") or []
        if isinstance(f, dict) and host and _base(f.get("path")) == _base(host)
    ]
    report = {"host": host, "controller": _newest(named or ([] if host else reports.get("controller")))}
    if report["host"] or report["controller"]:
        where = report["host"] or "gone from the host"
        lines.append(
            f"report: {where}" + (f" (controller copy: {report['controller']})" if report["controller"] else "")
        )
    else:
        lines.append("report: no report yet")
    return {
        "lines": lines,
        "live": {"color": live, "version": live_color.get("version") or "", "images": live_color.get("images") or {}},
        "report": report,
    }


class FilterModule:
    def filters(self):
        return {"release_summary": release_summary}
