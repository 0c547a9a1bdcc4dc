# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's page: the reports of the hosts of one run side by side.

Each host keeps its own report (its ledger is the truth for that host); this page answers what the person on call
asks first of a fleet: did every host end on the same version, which one did not and why, and what the steps did on
each host. It is drawn on the controller from the reports the hosts collected, and links to each host's page.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.release.fleet import summary
from ansible_collections.switchyard.release.plugins.module_utils.report.style import STYLE

SCHEMA = 1
# What the ledger of a host says of a run that ended well.
GOOD_OUTCOMES = ("promoted", "done", "paused", "unchanged")


def _live(report):
    """The host's live color and version when its report was made (collect's `live`), else what its outcome implies."""
    live = report.get("live")
    if isinstance(live, dict):
        return {"color": live.get("color") or "", "version": live.get("version") or ""}
    release = report.get("release") or {}
    if release.get("outcome") in GOOD_OUTCOMES:
        return {"color": release.get("color") or "", "version": release.get("version") or ""}
    return {"color": release.get("from_color") or "", "version": ""}


def _outcome(report):
    """The ledger's outcome, or the run's while the ledger entry is still open (a paused release: "running")."""
    release = report.get("release") or {}
    failure = report.get("failure") or {}
    if failure.get("outcome"):
        return failure["outcome"]
    if release.get("outcome") in (None, "", "running") and (report.get("run") or {}).get("outcome"):
        return report["run"]["outcome"]
    return release.get("outcome") or ""


def _host_row(host, report):
    release = report.get("release") or {}
    failure = report.get("failure") or {}
    return {
        "host": host,
        "release_id": release.get("id") or "",
        "kind": release.get("kind") or "",
        "version": release.get("version") or "",
        "outcome": _outcome(report),
        "reason": failure.get("reason") or release.get("reason") or "",
        "failed_step": failure.get("step") or "",
        "failed_task": failure.get("task") or "",
        "from_color": release.get("from_color") or "",
        "color": release.get("color") or "",
        "live": _live(report),
        "started_at": release.get("started_at"),
        "finished_at": release.get("finished_at"),
        "duration_s": release.get("duration_s"),
        "page": f"{release.get('id')}.html" if release.get("id") else "",
    }


def _steps(hosts, reports):
    """Each step name, in the order the hosts went through them, with each host's outcome and the gate's verdict.

    In fleet mode one gate judged the batch: every host's ledger holds the same verdict, shown once. Hosts judged apart
    (waves) whose verdicts differ keep theirs, in their own column.
    """
    names = []
    for host in hosts:
        for step in reports[host].get("steps") or []:
            if step.get("name") not in names:
                names.append(step.get("name"))
    rows = []
    for name in names:
        per_host = {}
        for host in hosts:
            step = next((s for s in reports[host].get("steps") or [] if s.get("name") == name), None)
            gate = step.get("gate") if step else None
            per_host[host] = (
                {
                    "outcome": step.get("outcome") or "",
                    "at": step.get("at"),
                    "gate": {"verdict": gate.get("verdict") or "", "reason": gate.get("reason") or ""}
                    if isinstance(gate, dict)
                    else None,
                }
                if step
                else None
            )
        verdicts = [c["gate"] for c in per_host.values() if c and c["gate"]]
        same = bool(verdicts) and all(v == verdicts[0] for v in verdicts)
        rows.append({"name": name, "hosts": per_host, "gate": verdicts[0] if same else None, "judged": bool(verdicts)})
    return rows


def fleet_report(app, hosts, reports, active=None, now=""):
    """The fleet's report of one run.

    ``hosts``: every host of the play, in inventory order. ``reports``: host -> the report it collected in this run
    (a host that failed before its release began, or was unreachable, or had nothing to do, has none). ``active``:
    the hosts still in the play (a host not in it failed or was unreachable).
    """
    hosts = [str(h) for h in hosts]
    reports = {str(h): r for h, r in (reports or {}).items() if isinstance(r, dict)}
    unknown = sorted(set(reports) - set(hosts))
    hosts += unknown
    reported = [h for h in hosts if h in reports]
    active = None if active is None else {str(h) for h in active}
    missing = []
    for host in hosts:
        if host in reports:
            continue
        if active is not None and host not in active:
            why = "failed or unreachable before its report"
        else:
            why = "no report in this run (not in a batch yet, or still in its rescue)"
        missing.append({"host": host, "why": why})
    rows = [_host_row(h, reports[h]) for h in reported]
    view = summary(app, {row["host"]: row["live"] for row in rows})
    outcomes = {}
    for row in rows:
        outcomes.setdefault(row["outcome"], []).append(row["host"])
    kinds = sorted({row["kind"] for row in rows if row["kind"]})
    ok = bool(rows) and not missing and all(row["outcome"] in GOOD_OUTCOMES for row in rows) and view["consistent"]
    return {
        "schema": SCHEMA,
        "kind": "fleet",
        "app": app,
        "generated_at": now,
        "run": {"kinds": kinds, "first_release_id": rows[0]["release_id"] if rows else ""},
        "ok": ok,
        "line": view["line"] if rows else f"{app}: no host reported",
        "consistent": view["consistent"],
        "disagree": view["disagree"],
        "versions": view["versions"],
        "outcomes": {k: sorted(v) for k, v in outcomes.items()},
        "hosts": rows,
        "missing": missing,
        "steps": _steps(reported, reports),
    }


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{ f.app }} fleet {{ f.run.first_release_id }} - {{ 'consistent' if f.consistent else 'hosts disagree' }}</title>
<style>
{{ style | safe }}
.bad, .bad td { background: #fbd3d3; font-weight: bold; } .muted { color: #666; }
</style></head><body>
<h1>{{ f.app }}: {{ f.run.kinds | join(', ') or 'run' }} on {{ f.hosts | length + f.missing | length }} hosts
<span class="muted">({{ f.run.first_release_id }})</span></h1>
<div class="{{ 'ok' if f.ok else 'banner' }}" id="fleet-line"><strong>{{ f.line }}</strong>
{% for outcome, names in f.outcomes | dictsort %}<br>{{ outcome or 'no outcome' }}: {{ names | join(', ') }}{% endfor %}
{% for m in f.missing %}<br>{{ m.host }}: {{ m.why }}{% endfor %}</div>
<p class="muted">Generated {{ f.generated_at }}. Each host's ledger is the truth for that host: its page has the
figures, charts and archive.</p>

<h2>Hosts</h2>
<table><tr><th>host</th><th>report</th><th>version</th><th>outcome</th><th>colors</th><th>live now</th>
<th>failed at</th><th>reason</th><th>duration</th></tr>
{% for h in f.hosts %}<tr class="{{ 'bad' if h.host in f.disagree or h.outcome not in good else '' }}">
<td>{{ h.host }}</td><td>{% if h.page %}<a href="{{ h.page }}">{{ h.release_id }}</a>{% endif %}</td>
<td>{{ h.version }}</td><td>{{ h.outcome }}</td><td>{{ h.from_color or 'none' }} &rarr; {{ h.color or 'none' }}</td>
<td>{{ h.live.version or 'nothing' }}{% if h.live.color %} ({{ h.live.color }}){% endif %}</td>
<td>{{ h.failed_step }}</td><td>{{ h.reason }}{% if h.failed_task %} - task "{{ h.failed_task }}"{% endif %}</td>
<td class="num">{{ h.duration_s }} s</td></tr>
{% endfor %}{% for m in f.missing %}<tr class="bad"><td>{{ m.host }}</td><td colspan="8">{{ m.why }}</td></tr>
{% endfor %}</table>

<h2>Steps</h2>
<table><tr><th>step</th>{% for h in f.hosts %}<th>{{ h.host }}</th>{% endfor %}<th>gate</th></tr>
{% for s in f.steps %}<tr><td>{{ s.name }}</td>
{% for h in f.hosts %}{% set c = s.hosts[h.host] %}<td>{% if c %}{{ c.outcome }} <span class="muted">{{ c.at }}</span>
{% if c.gate and not s.gate %}<br>{{ c.gate.reason }}{% endif %}
{% else %}<span class="muted">-</span>{% endif %}</td>{% endfor %}
<td>{% if s.gate %}{{ s.gate.verdict }}: {{ s.gate.reason }}{% elif s.judged %}judged apart, per host{% endif %}
</td></tr>
{% endfor %}</table>
</body></html>
"""


def render_fleet(report):
    """The fleet's HTML page (fleet_report's data): autoescaped, no script, links to each host's page."""
    from jinja2 import Environment

    environment = Environment(autoescape=True)
    return environment.from_string(TEMPLATE).render(f=report, good=GOOD_OUTCOMES, style=STYLE)
