# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The report's self-contained HTML page: Jinja2 with autoescape (every value from the ledger, the log
or the run is escaped), the charts inlined as SVG, the CSS inline; no script, nothing fetched."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.report.charts import charts
from ansible_collections.switchyard.release.plugins.module_utils.report.style import STYLE

FIGURE_COLUMNS = (
    ("requests", "requests"),
    ("errors", "errors"),
    ("error_rate", "error rate"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("throughput_rps", "req/s"),
    ("cpu_percent", "CPU %"),
    ("memory_bytes", "memory"),
    ("restarts", "restarts"),
    ("log_errors", "log errors"),
    ("synthetic_share", "synthetic share"),
)

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{ r.app }} {{ r.release.kind }} {{ r.release.id }} - {{ r.release.outcome }}</title>
<style>
{{ style | safe }}
.failing-metric, .failing-metric td { background: #fbd3d3; font-weight: bold; }
.chart { margin: .5em 0 1em; } .chart.failing-metric { outline: 3px solid #d62728; }
.muted { color: #666; } code { font-size: 12px; }
</style></head><body>
<h1>{{ r.app }}: {{ r.release.kind }} {{ r.release.version or '' }} <span class="muted">({{ r.release.id }})</span></h1>
{% if r.failure %}
<div class="banner" id="failure"><strong>{{ (r.failure.outcome or r.release.outcome) | upper }}</strong>
{%- if r.failure.step %} at step
<strong>{{ r.failure.step }}</strong>{% endif %}{% if r.failure.metric_names %}: failing metric(s)
<strong class="failing-metric-name">{{ r.failure.metric_names | join(', ') }}</strong>{% endif %}.
{% for m in r.failure.metrics %}<br>{{ m.route ~ ': ' if m.route else '' }}{{ m.metric }} ({{ m.status }}):
{{ m.reason }}{% endfor %}
{% if r.failure.reason %}<br>Reason: {{ r.failure.reason }}{% endif %}
{% if r.failure.task %}<br>Failed task: {{ r.failure.task }}{% endif %}</div>
{% else %}
<div class="ok">Outcome: <strong>{{ r.release.outcome }}</strong>{% if r.release.reason %}
 - {{ r.release.reason }}{% endif %}</div>
{% endif %}
<table>
<tr><th>color</th><td>{{ r.release.from_color or 'none' }} &rarr; {{ r.release.color or 'none' }}</td>
<th>who</th><td>{{ r.release.owner }}</td></tr>
<tr><th>started</th><td>{{ r.release.started_at }}</td><th>finished</th>
<td>{{ r.release.finished_at or 'still running' }}
({{ r.release.duration_s }} s)</td></tr>
<tr><th>playbook</th><td>{{ r.run.playbook or '' }}</td><th>check mode</th><td>{{ r.run.check_mode }}</td></tr>
<tr><th>report</th><td colspan="3">generated {{ r.generated_at }} from {{ r.requests_read }} logged requests</td></tr>
</table>

<h2>Timeline</h2>
<table><tr><th>step</th><th>at</th><th>weights</th><th>window</th><th>outcome</th><th>gate's reason</th></tr>
{% for s in r.steps %}<tr class="{{ 'failing-metric' if r.failure and s.name == r.failure.step else '' }}">
<td>{{ s.name }}</td><td>{{ s.at }}</td>
<td>{{ s.weights | default('', true) | dictsort | map('join', ' ') | join(', ') if s.weights else '' }}</td>
<td class="num">{{ s.window.seconds }} s</td><td>{{ s.outcome }}</td>
<td>{{ s.gate.reason if s.gate else '' }}</td></tr>
{% endfor %}</table>

<h2>Charts</h2>
{% for c in charts %}<div class="chart{{ ' failing-metric' if c.failing else '' }}" id="chart-{{ c.key }}">
{{ c.svg | safe }}</div>
{% endfor %}

<h2>Per step and color</h2>
{% for s in r.steps if s.gate or s.name.startswith('canary') %}
<h3>{{ s.name }} <span class="muted">{{ s.window.start }} .. {{ s.window.end }}</span></h3>
<table><tr><th>color</th>{% for key, label in columns %}<th>{{ label }}</th>{% endfor %}<th>source</th></tr>
{% for color, f in s.colors | dictsort %}<tr><td>{{ color }}</td>
{% for key, label in columns %}<td class="num">{{ fmt(f[key]) if key in f else '' }}</td>{% endfor %}
<td>{{ f.source }}</td></tr>
{% endfor %}</table>
{% if s.gate %}<table><tr><th>route</th><th>metric</th><th>status</th><th>canary</th><th>baseline</th><th>limit</th>
<th>p</th><th>n (canary/baseline)</th><th>reason</th></tr>
{% for m in s.gate.metrics %}<tr class="{{ 'failing-metric' if m.status != 'pass' else '' }}"><td>{{ m.route }}</td>
<td>{{ m.metric }}</td><td>{{ m.status }}</td><td class="num">{{ fmt(m.canary) }}</td>
<td class="num">{{ fmt(m.baseline) }}</td>
<td class="num">{{ fmt(m.limit) }}</td><td class="num">{{ fmt(m.p_value) }}</td>
<td class="num">{{ m.canary_n }}/{{ m.baseline_n }}</td>
<td>{{ m.reason }}</td></tr>{% endfor %}</table>{% endif %}
{% endfor %}

<h2>Before / after</h2>
<table><tr><th></th><th>color</th><th>window</th>{% for key, label in columns[:7] %}<th>{{ label }}</th>
{% endfor %}</tr>
{% for name in ['before', 'after'] %}{% set w = r.before_after[name] %}<tr><th>{{ name }}</th>
{% if w %}<td>{{ w.color }}</td><td>{{ w.start }} .. {{ w.end }} ({{ w.seconds }} s)</td>
{% for key, label in columns[:7] %}<td class="num">{{ fmt(w.figures[key]) }}</td>{% endfor %}
{% else %}<td colspan="9" class="muted">{{ 'no live color before' if name == 'before' else 'not promoted' }}</td>
{% endif %}</tr>
{% endfor %}</table>

<h2>Images</h2>
<table><tr><th>service</th><th>image</th><th>from</th><th>signature</th></tr>
{% for i in r.images %}<tr><td>{{ i.service }}</td><td><code>{{ i.image }}</code></td>
<td><code>{{ i.reference or '' }}</code></td>
<td>{{ i.signature }}{% if i.signing_key_sha256 %} (key sha256 {{ i.signing_key_sha256 }}){% endif %}</td>
</tr>{% endfor %}</table>

<h2>Migrations</h2>
{% if r.migrations %}<table><tr><th>step</th><th>at</th><th>duration</th><th>what</th></tr>
{% for m in r.migrations %}<tr><td>{{ m.step }}</td><td>{{ m.at }}</td><td class="num">{{ m.duration_s }} s</td>
<td>{% for f in m.migrations | default([]) %}{{ f.version }} {{ f.name }}: {{ f.duration_ms }} ms<br>{% endfor %}
{% for b in m.backfills | default([]) %}backfill {{ b.version }} {{ b.name }}: {{ b.rows_this_run }} rows
({{ b.rows_done }}/{{ b.rows_total }}) in {{ b.seconds }} s, {{ b.rows_per_second }} rows/s,
{{ b.batches }} batches<br>{% endfor %}
{% for k, v in m | dictsort if k not in ['step', 'at', 'duration_s', 'migrations', 'backfills'] -%}
{{ k }}: {{ v }} {% endfor %}</td>
</tr>{% endfor %}</table>
{% else %}<p class="muted">none in this {{ r.release.kind }}</p>{% endif %}

<h2>Archive</h2>
<p>{{ r.archive or 'not archived' }}</p>
</body></html>
"""


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def render(report):
    """The HTML page of a report (collect.collect's data)."""
    from jinja2 import Environment

    environment = Environment(autoescape=True)
    environment.globals.update(fmt=fmt)
    return environment.from_string(TEMPLATE).render(
        r=report, charts=charts(report), columns=FIGURE_COLUMNS, style=STYLE
    )
