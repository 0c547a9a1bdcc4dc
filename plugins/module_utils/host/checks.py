# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named preflight checks, judged from measurements: pure, so each limit is unit-tested."""

from __future__ import annotations

import re

PASS, FAIL, SKIP = "pass", "fail", "skip"

# Every check, in the order they are reported; the module's skip option takes these names.
CHECKS = ("docker", "compose", "free_space", "memory", "clock", "lb", "lb_admin", "lb_config", "database")
# The host's own checks (judge()); the LB's and the database's are measured and judged by the manager.
HOST_CHECKS = ("docker", "compose", "free_space", "memory", "clock")
TURNED_OFF = "turned off by switchyard_preflight_skip"


def version_tuple(text):
    """'26.1.5+dfsg1' -> (26, 1, 5); None when there is no number."""
    numbers = re.findall(r"\d+", re.split(r"[+-]", str(text or ""), maxsplit=1)[0])
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def check(name, status, value, limit, message):
    return {"name": name, "status": status, "value": value, "limit": limit, "message": message}


def turned_off(name, limit=None):
    """A check the operator turned off: skip, with the reason the ledger records."""
    return check(name, SKIP, None, limit, TURNED_OFF)


def ledger_record(checks):
    """The compact form the ledger keeps: name, status, value, limit (and the reason of a skip or a failure)."""
    return [
        {
            "name": c["name"],
            "status": c["status"],
            "value": c["value"],
            "limit": c["limit"],
            **({"reason": c["message"]} if c["status"] != PASS else {}),
        }
        for c in checks
    ]


def parse_meminfo(text):
    """/proc/meminfo -> {"available_kb", "total_kb"}; a kernel older than 3.14 has no MemAvailable."""
    fields = {}
    for line in text.splitlines():
        key, _colon, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            fields[key.strip()] = int(words[0])
    if "MemTotal" not in fields or "MemAvailable" not in fields:
        raise ValueError("no MemTotal or MemAvailable line")
    return {"available_kb": fields["MemAvailable"], "total_kb": fields["MemTotal"]}


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


def docker_check(measured, limits):
    if measured.get("docker_error"):
        return check("docker", FAIL, None, limits["min_docker_version"], measured["docker_error"])
    return at_least_version("docker", "Docker Engine", measured["docker_version"], limits["min_docker_version"])


def compose_check(measured, limits):
    if measured.get("compose_error"):
        return check("compose", FAIL, None, limits["min_compose_version"], measured["compose_error"])
    return at_least_version("compose", "Compose", measured["compose_version"], limits["min_compose_version"])


def free_space_check(measured, limits):
    """Both limits: GB (a small disk) and percent (a large one filling up)."""
    limit = LIMITS["free_space"](limits)
    if measured.get("free_error"):
        return check("free_space", FAIL, None, limit, measured["free_error"])
    free_gb = measured["free_bytes"] / 1024**3
    percent = 100.0 * measured["free_bytes"] / measured["total_bytes"] if measured["total_bytes"] else 0.0
    short = []
    if free_gb < limits["min_free_gb"]:
        short.append(f"min_free_gb={limits['min_free_gb']:g} needed")
    if percent < limits["min_free_percent"]:
        short.append(f"min_free_percent={limits['min_free_percent']:g} needed")
    return check(
        "free_space",
        FAIL if short else PASS,
        {"bytes": measured["free_bytes"], "gb": round(free_gb, 1), "percent": round(percent, 1)},
        limit,
        f"{free_gb:.1f} GB ({percent:.1f} %) free under {measured['docker_root']}"
        + (", " + " and ".join(short) if short else ""),
    )


def memory_check(measured, limits):
    limit = limits["min_free_memory_mb"]
    if measured.get("memory_error"):
        return check("memory", FAIL, None, limit, measured["memory_error"])
    available_mb = measured["mem_available_kb"] // 1024
    total_mb = measured["mem_total_kb"] // 1024
    ok = available_mb >= limit
    return check(
        "memory",
        PASS if ok else FAIL,
        {"available_mb": available_mb, "total_mb": total_mb},
        limit,
        f"{available_mb} MB of {total_mb} MB available (MemAvailable)"
        + ("" if ok else f", min_free_memory_mb={limit} needed"),
    )


def clock_check(measured, limits):
    skew = measured["clock_skew_s"]
    if skew is None:
        return check("clock", SKIP, None, limits["max_clock_skew"], "no controller time given")
    close = abs(skew) <= limits["max_clock_skew"]
    return check(
        "clock",
        PASS if close else FAIL,
        round(skew, 1),
        limits["max_clock_skew"],
        f"the clock is {abs(skew):.1f} s "
        + ("ahead of" if skew > 0 else "behind")
        + " the controller's"
        + ("" if close else f", max_clock_skew={limits['max_clock_skew']:g} allowed (check NTP)"),
    )


JUDGES = {
    "docker": docker_check,
    "compose": compose_check,
    "free_space": free_space_check,
    "memory": memory_check,
    "clock": clock_check,
}


LIMITS = {
    "docker": lambda limits: limits["min_docker_version"],
    "compose": lambda limits: limits["min_compose_version"],
    "free_space": lambda limits: {"gb": limits["min_free_gb"], "percent": limits["min_free_percent"]},
    "memory": lambda limits: limits["min_free_memory_mb"],
    "clock": lambda limits: limits["max_clock_skew"],
}


def judge(measured, limits, skip=()):
    """The host's checks, in order: docker, compose, free_space, memory, clock - those in skip turned off
    (and not measured). measured: docker_version, compose_version, docker_root, free_bytes, total_bytes,
    mem_available_kb, mem_total_kb, clock_skew_s (None when the controller's time was not given), or
    <what>_error when it could not be measured."""
    return [
        turned_off(name, LIMITS[name](limits)) if name in skip else JUDGES[name](measured, limits)
        for name in HOST_CHECKS
    ]


def describe_sessions(sessions):
    """Long transactions for a message: pid, application, state, age, the tables, the statement's keywords."""
    return "; ".join(
        f"pid {s['pid']} (application {s['application_name'] or '-'}, {s['state'] or 'state unknown'}, "
        f"transaction open {s['transaction_age_s']:g} s, "
        + ("holds" if s["granted"] else "waits for")
        + f" a lock on {', '.join(s['tables'])}"
        + (f", {s['statement']}" if s.get("statement") else "")
        + ")"
        for s in sessions[:5]
    ) + (f"; and {len(sessions) - 5} more" if len(sessions) > 5 else "")


def unseen_warning(sessions, user):
    """Sessions whose transaction age the connecting user cannot see: not a failure (app sessions hold short
    locks all the time) but said, with what would let the check see them."""
    tables = sorted({t for s in sessions for t in s["tables"]})
    shown = ", ".join(f"pid {s['pid']} of role {s['user'] or '-'}" for s in sessions[:5])
    more = f", and {len(sessions) - 5} more" if len(sessions) > 5 else ""
    return (
        f"{len(sessions)} session(s) of other roles hold or wait for locks on {', '.join(tables)} ({shown}{more}); "
        f"their transaction age is not visible to {user}: grant pg_read_all_stats"
    )


def database_check(facts, max_age):
    """The database's check from what was read: reachable (facts["error"] otherwise), not in recovery, and
    no transaction older than max_age (s) holding or waiting for a lock on a table a pending migration touches.
    Sessions whose age the user cannot see do not fail it: they are a warning, in the message and the value."""
    if facts.get("error"):
        return check("database", FAIL, None, max_age, facts["error"])
    unseen = facts.get("unseen_sessions") or []
    warnings = [unseen_warning(unseen, facts.get("user"))] if unseen else []
    value = {
        "database": facts["database"],
        "in_recovery": facts["in_recovery"],
        "tables": facts["tables"],
        "long_transactions": facts["long_transactions"],
        "unseen_sessions": unseen,
        "warnings": warnings,
    }
    warned = "".join(f"; warning: {w}" for w in warnings)
    problems = []
    if facts["in_recovery"]:
        problems.append("the database is in recovery (a standby, or a restore in progress): migrations cannot write")
    if facts["long_transactions"]:
        problems.append(
            f"{len(facts['long_transactions'])} transaction(s) older than max_transaction_age={max_age:g} s on "
            f"the tables the pending migrations touch: {describe_sessions(facts['long_transactions'])}"
        )
    if problems:
        return check("database", FAIL, value, max_age, f"database {facts['database']}: " + "; ".join(problems) + warned)
    tables = ", ".join(facts["tables"]) if facts["tables"] else "none (no pending migration touches an existing table)"
    return check(
        "database",
        PASS,
        value,
        max_age,
        f"database {facts['database']} answers, not in recovery, no transaction"
        + (" it can see" if unseen else "")
        + f" older than {max_age:g} s on the tables of the pending migrations: {tables}{warned}",
    )
