# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a drill measured, from its probes (timed by the client) and the LB's request log (which color served
each, and every request that failed): pure functions, so each definition has its unit test.

- RTO of a full drill: from the shift call to the first probe of the run of probes, to the end of the phase,
  that the target served - from then on every new request went to it.
- RTO of a partial drill: from the shift call to the first probe the target served.
- Back: the same "every request" measure for the return to the live color.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.drill.probes import probe_number


def ok(status):
    return status is not None and 0 < status < 500


def attach_colors(probes, records, tag):
    """The probes with the color the LB's log shows for each (None when the log has no line for it: the
    request never reached the LB, or the LB answered it without a color), and the LB's status."""
    seen = {}
    for _at, _route, color, status, target in records:
        number = probe_number(target, tag)
        if number is not None:
            seen[number] = (color, status)
    out = []
    for probe in probes:
        color, status = seen.get(probe["n"], (None, None))
        out.append({**probe, "color": color, "lb_status": status, "logged": probe["n"] in seen})
    return out


def served(probe, color):
    return probe.get("color") == color and ok(probe.get("status"))


def known(probe):
    """Whether the probe counts for a color: the LB's log shows it, or it failed. A probe answered but missing from
    the log (HAProxy drops log lines when its stdout cannot keep up) went to a color nobody can name: it is left out
    of the shares and runs rather than counted as served by another color."""
    return probe.get("logged", True) or not ok(probe.get("status"))


def time_to(probes, color, start, end=None, every=True):
    """Milliseconds from start to color serving: the first probe of the last unbroken run of probes served by
    color up to end (every), or the first probe served by color (not every). Probes sent before start or
    after end are not looked at, nor those of unknown color; None when color never (or not to the end) served."""
    window = [p for p in probes if p["sent"] >= start and (end is None or p["sent"] < end) and known(p)]
    first = None
    for probe in window:
        if served(probe, color):
            if first is None:
                first = probe
                if not every:
                    break
        elif every:
            first = None
    return round((first["answered"] - start) * 1000, 1) if first else None


def share(probes, color, start, end):
    """Percent of the probes sent in [start, end) that color served, of those whose color is known (None without)."""
    window = [p for p in probes if start <= p["sent"] < end and known(p)]
    if not window:
        return None
    return round(100.0 * sum(1 for p in window if served(p, color)) / len(window), 1)


def failures(records, tag):
    """{real, probes, total} of the requests the LB logged as failed (5xx, or no answer) - real traffic and the
    drill's probes apart."""
    real = probes = 0
    for _at, _route, _color, status, target in records:
        if status is None or status >= 500 or status < 0:
            if probe_number(target, tag) is not None:
                probes += 1
            else:
                real += 1
    return {"real": real, "probes": probes, "total": real + probes}


def summary(probes):
    """{sent, answered, failed, unlogged} of the probes (failed: no answer or 5xx as the client saw it)."""
    return {
        "sent": len(probes),
        "answered": sum(1 for p in probes if p["status"] is not None),
        "failed": sum(1 for p in probes if not ok(p["status"])),
        "unlogged": sum(1 for p in probes if not p.get("logged")),
    }
