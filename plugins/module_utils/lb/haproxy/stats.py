# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counter deltas from HAProxy's stats socket over a window.

All counters restart with each worker process: a changed worker pid, or any counter that went
down, means a reload happened and the window cannot be used."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError

COUNTERS = ("req_tot", "hrsp_5xx", "econ", "eresp", "stot")


def snapshot(api, backend, servers):
    info = api.info()
    rows = api.stat(backend)
    out = {"pid": info.get("Pid"), "servers": {}}
    for name in servers:
        row = rows.get((backend, name))
        if row is None:
            raise LBError(
                f"server {name} is not in backend {backend}; it has: "
                f"{', '.join(sorted(s for b, s in rows if b == backend and s not in ('BACKEND', 'FRONTEND')))}"
            )
        out["servers"][name] = {
            **{c: row.get(c) if isinstance(row.get(c), int) else 0 for c in COUNTERS},
            "status": row.get("status"),
            "check_status": row.get("check_status"),
            "rtime": row.get("rtime") if isinstance(row.get("rtime"), int) else None,
        }
    return out


def delta(start, end):
    """{server: {requests, errors, status, rtime_avg_ms}} and the reasons the window is unusable."""
    resets = []
    if start["pid"] != end["pid"]:
        resets.append(f"HAProxy worker changed (pid {start['pid']} -> {end['pid']}): a reload reset the counters")
    servers = {}
    for name, last in end["servers"].items():
        first = start["servers"][name]
        down = [c for c in COUNTERS if last[c] < first[c]]
        if down:
            resets.append(f"{name}: counter(s) {', '.join(down)} went down: the counters were reset")
        requests = last["req_tot"] - first["req_tot"]
        errors = (
            (last["hrsp_5xx"] - first["hrsp_5xx"]) + (last["econ"] - first["econ"]) + (last["eresp"] - first["eresp"])
        )
        servers[name] = {
            "requests": requests,
            "errors": errors,
            "status": last["status"],
            "check_status": last["check_status"],
            "rtime_avg_ms": last["rtime"],
        }
    return servers, resets
