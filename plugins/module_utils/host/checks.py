# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named preflight checks, judged from measurements: pure, so each limit is unit-tested."""

from __future__ import annotations

import re

PASS, FAIL, SKIP = "pass", "fail", "skip"


def version_tuple(text):
    """'26.1.5+dfsg1' -> (26, 1, 5); None when there is no number."""
    numbers = re.findall(r"\d+", re.split(r"[+-]", str(text or ""), maxsplit=1)[0])
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def check(name, status, value, limit, message):
    return {"name": name, "status": status, "value": value, "limit": limit, "message": message}


def at_least_version(name, what, found, minimum):
    have, need = version_tuple(found), version_tuple(minimum)
    if have is None:
        return check(name, FAIL, found, minimum, f"{what}: cannot read a version from {found!r}")
    ok = have >= need
    return check(
        name,
        PASS if ok else FAIL,
        found,
        minimum,
        f"{what} {found}" + ("" if ok else f", {minimum} or later needed"),
    )


def judge(measured, limits):
    """The checks, in order: docker, compose, free_space, clock. measured: docker_version,
    compose_version, docker_root, free_bytes, total_bytes, clock_skew_s (None when the controller's
    time was not given)."""
    checks = [
        at_least_version("docker", "Docker Engine", measured["docker_version"], limits["min_docker_version"]),
        at_least_version("compose", "Compose", measured["compose_version"], limits["min_compose_version"]),
    ]
    free_gb = measured["free_bytes"] / 1024**3
    percent = 100.0 * measured["free_bytes"] / measured["total_bytes"] if measured["total_bytes"] else 0.0
    enough = free_gb >= limits["min_free_gb"]
    checks.append(
        check(
            "free_space",
            PASS if enough else FAIL,
            {"bytes": measured["free_bytes"], "gb": round(free_gb, 1), "percent": round(percent, 1)},
            limits["min_free_gb"],
            f"{free_gb:.1f} GB ({percent:.0f} %) free under {measured['docker_root']}"
            + ("" if enough else f", min_free_gb={limits['min_free_gb']:g} needed"),
        )
    )
    skew = measured["clock_skew_s"]
    if skew is None:
        checks.append(check("clock", SKIP, None, limits["max_clock_skew"], "no controller time given"))
    else:
        close = abs(skew) <= limits["max_clock_skew"]
        checks.append(
            check(
                "clock",
                PASS if close else FAIL,
                round(skew, 1),
                limits["max_clock_skew"],
                f"the clock is {abs(skew):.1f} s "
                + ("ahead of" if skew > 0 else "behind")
                + " the controller's"
                + ("" if close else f", max_clock_skew={limits['max_clock_skew']:g} allowed (check NTP)"),
            )
        )
    return checks
