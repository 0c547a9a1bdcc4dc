# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The report's charts, drawn by matplotlib as inline SVG (the page works offline, without scripts).

matplotlib is a controller dependency (requirements/controller.txt, requirements/ee.txt): it is
imported here, lazily, with the Agg backend, so that the Docker hosts never need it.
"""

from __future__ import annotations

import io

from ansible_collections.switchyard.release.plugins.module_utils.report.collect import epoch

COLOR_LINES = {"blue": "#1f5fbf", "green": "#1e8f3e"}
FAILED = "#d62728"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "switchyard", "font.size": 9})
    from matplotlib import pyplot

    return pyplot


def _svg(figure, pyplot):
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    pyplot.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML declaration and DOCTYPE


def _step_markers(axes, report, origin):
    for step in report["steps"]:
        at = epoch(step.get("at"))
        if at is None:
            continue
        axes.axvline(at - origin, color="#888888", linewidth=0.7, linestyle=":")
        axes.annotate(
            step["name"],
            (at - origin, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color="#555555",
        )


def _failed_window(axes, report, origin):
    failure = report.get("failure") or {}
    step = next((s for s in report["steps"] if s["name"] == failure.get("step")), None)
    if step:
        axes.axvspan(
            epoch(step["window"]["start"]) - origin,
            epoch(step["window"]["end"]) - origin,
            color=FAILED,
            alpha=0.15,
            label=f"failed: {step['name']}",
        )


def chart(report, key, title, ylabel, highlight=False):
    """One line per color of series[key] against seconds since the release began, with the step markers;
    highlight shades the failed step's window (the chart of a failing metric)."""
    pyplot = _pyplot()
    series = report["series"]
    origin = epoch(report["release"]["started_at"]) or epoch(series["t"][0])
    times = [epoch(t) - origin + series["bucket_s"] / 2 for t in series["t"]]
    figure, axes = pyplot.subplots(figsize=(8, 2.6))
    for color, values in series["colors"].items():
        points = [(t, v) for t, v in zip(times, values[key]) if v is not None]
        if points:
            axes.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                label=color,
                color=COLOR_LINES.get(color),
                linewidth=1.4,
                marker="." if len(points) < 40 else None,
            )
    _step_markers(axes, report, origin)
    if highlight:
        _failed_window(axes, report, origin)
    axes.set_title(title, color=FAILED if highlight else "black", loc="left")
    axes.set_xlabel("seconds since the release began")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", fontsize=7)
    return _svg(figure, pyplot)


# The gate's metrics each chart shows: a failing one highlights its chart.
CHARTS = (
    ("share_percent", "Traffic share (% of requests served)", "%", ()),
    ("error_rate", "Error rate per color", "5xx / requests", ("error_rate", "error_rate_increase")),
    ("p95_ms", "p95 latency per color", "ms", ("p95_ms", "p99_ms", "latency_ratio", "p50_ms")),
    ("rps", "Throughput per color", "requests/s", ()),
)


def charts(report):
    """[{key, title, svg, failing}] of the report, in display order."""
    failing = set((report.get("failure") or {}).get("metric_names") or [])
    out = []
    for key, title, ylabel, metrics in CHARTS:
        highlight = bool(failing & set(metrics))
        out.append(
            {"key": key, "title": title, "failing": highlight, "svg": chart(report, key, title, ylabel, highlight)}
        )
    return out
