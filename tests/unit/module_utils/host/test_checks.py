"""The preflight checks judged from measurements: each limit, passing and failing, named."""

from __future__ import annotations

import pytest
from support.recorded import FIXTURES

from ansible_collections.switchyard.release.plugins.module_utils.host.checks import (
    TURNED_OFF,
    database_check,
    judge,
    ledger_record,
    parse_meminfo,
    version_tuple,
)

GB = 1024**3
LIMITS = {
    "min_docker_version": "20.10",
    "min_compose_version": "2.0.0",
    "min_free_gb": 2,
    "min_free_percent": 10,
    "min_free_memory_mb": 256,
    "max_clock_skew": 5,
}
HOST = {
    "docker_version": "26.1.5+dfsg1",
    "compose_version": "2.26.1-4",
    "docker_root": "/var/lib/docker",
    "free_bytes": 80 * GB,
    "total_bytes": 250 * GB,
    "mem_available_kb": 2 * 1024**2,
    "mem_total_kb": 4 * 1024**2,
    "clock_skew_s": 0.4,
}


def by_name(checks: list[dict]) -> dict:
    return {c["name"]: c for c in checks}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("26.1.5+dfsg1", (26, 1, 5)), ("2.26.1-4", (2, 26, 1)), ("v2.0.0", (2, 0, 0)), ("20.10", (20, 10)), ("", None)],
)
def test_versions_as_debian_and_docker_print_them(text, expected) -> None:
    assert version_tuple(text) == expected


def test_a_healthy_host_passes_every_check_in_order() -> None:
    checks = judge(HOST, LIMITS)
    assert [c["name"] for c in checks] == ["docker", "compose", "free_space", "memory", "clock"]
    assert {c["status"] for c in checks} == {"pass"}
    assert by_name(checks)["free_space"]["value"] == {"bytes": 80 * GB, "gb": 80.0, "percent": 32.0}


@pytest.mark.parametrize(
    ("change", "name", "words"),
    [
        ({"docker_version": "19.03.15"}, "docker", "20.10 or later needed"),
        ({"compose_version": "1.29.2"}, "compose", "2.0.0 or later needed"),
        ({"compose_version": "garbage"}, "compose", "cannot read a version"),
        ({"free_bytes": 1 * GB}, "free_space", "min_free_gb=2 needed"),
        # 20 GB of 250 (8 %): enough GB, too small a share of a large disk.
        (
            {"free_bytes": 20 * GB},
            "free_space",
            "20.0 GB (8.0 %) free under /var/lib/docker, min_free_percent=10 needed",
        ),
        (
            {"mem_available_kb": 200 * 1024},
            "memory",
            "200 MB of 4096 MB available (MemAvailable), min_free_memory_mb=256",
        ),
        ({"docker_error": "Docker does not answer: reading docker info failed (rc=1)"}, "docker", "does not answer"),
        ({"clock_skew_s": -7.5}, "clock", "7.5 s behind the controller's, max_clock_skew=5 allowed (check NTP)"),
        ({"clock_skew_s": 9}, "clock", "ahead of"),
    ],
)
def test_each_limit_fails_with_its_name_and_the_value(change, name, words) -> None:
    checks = by_name(judge({**HOST, **change}, LIMITS))
    assert checks[name]["status"] == "fail" and words in checks[name]["message"], checks[name]
    assert all(c["status"] == "pass" for n, c in checks.items() if n != name)


def test_without_the_controllers_time_the_clock_is_skipped_not_passed() -> None:
    assert by_name(judge({**HOST, "clock_skew_s": None}, LIMITS))["clock"]["status"] == "skip"


def test_a_check_turned_off_is_skipped_with_its_reason_and_limit_and_not_judged() -> None:
    checks = by_name(judge({**HOST, "mem_available_kb": None}, LIMITS, skip={"memory", "free_space"}))
    assert checks["memory"] == {"name": "memory", "status": "skip", "value": None, "limit": 256, "message": TURNED_OFF}
    assert checks["free_space"]["limit"] == {"gb": 2, "percent": 10} and checks["free_space"]["status"] == "skip"


def test_the_ledger_record_keeps_value_and_limit_and_the_reason_of_what_did_not_pass() -> None:
    record = ledger_record(judge({**HOST, "clock_skew_s": 9}, LIMITS, skip={"memory"}))
    assert record[0] == {"name": "docker", "status": "pass", "value": "26.1.5+dfsg1", "limit": "20.10"}
    assert record[3] == {"name": "memory", "status": "skip", "value": None, "limit": 256, "reason": TURNED_OFF}
    assert record[4]["status"] == "fail" and "max_clock_skew=5" in record[4]["reason"]


def test_meminfo_as_linux_prints_it() -> None:
    memory = parse_meminfo((FIXTURES / "linux" / "proc-meminfo.txt").read_text())
    assert 0 < memory["available_kb"] <= memory["total_kb"]
    with pytest.raises(ValueError, match="MemAvailable"):
        parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n")  # a kernel before 3.14


DB = {"database": "shop", "in_recovery": False, "tables": ["items"], "long_transactions": []}
# Read from pg_stat_activity and pg_locks by host/database.py while `LOCK TABLE items` was held open.
SESSION = {
    "pid": 4242,
    "application_name": "psql",
    "state": "idle in transaction",
    "transaction_age_s": 3.2,
    "tables": ["items"],
    "granted": True,
    "statement": "LOCK",
}


def test_a_database_answering_without_long_transactions_passes_naming_the_tables() -> None:
    check = database_check(DB, 60)
    assert check["status"] == "pass" and check["limit"] == 60 and "pending migrations: items" in check["message"]


def test_a_database_in_recovery_fails() -> None:
    # pg_is_in_recovery() returns true on a standby (or while a backup is restored): a recorded row, as the
    # testbed's PostgreSQL is a primary.
    check = database_check({**DB, "in_recovery": True}, 60)
    assert check["status"] == "fail" and check["value"]["in_recovery"] is True
    assert check["message"].startswith("database shop: the database is in recovery")


def test_a_long_transaction_fails_naming_the_session_the_table_and_the_limit() -> None:
    waiting = {**SESSION, "pid": 4243, "granted": False, "statement": None}
    check = database_check({**DB, "long_transactions": [SESSION, waiting]}, 1)
    assert check["status"] == "fail"
    assert "2 transaction(s) older than max_transaction_age=1 s" in check["message"]
    assert (
        "pid 4242 (application psql, idle in transaction, transaction open 3.2 s, holds a lock on items, LOCK)"
        in (check["message"])
    )
    assert "pid 4243" in check["message"] and "waits for a lock on items)" in check["message"]


def test_a_database_that_does_not_answer_fails_with_what_was_said() -> None:
    check = database_check({"error": "cannot connect to PostgreSQL: connection refused"}, 60)
    assert check == {
        "name": "database",
        "status": "fail",
        "value": None,
        "limit": 60,
        "message": "cannot connect to PostgreSQL: connection refused",
    }


def test_sessions_whose_age_is_hidden_pass_with_a_warning_in_the_message_and_the_value() -> None:
    unseen = [
        {"pid": 4400, "user": "shop_app", "application_name": "web", "tables": ["items"], "granted": True},
        {"pid": 4401, "user": "report", "application_name": "", "tables": ["items", "orders"], "granted": False},
    ]
    check = database_check({**DB, "user": "switchyard_preflight", "unseen_sessions": unseen}, 60)
    warning = (
        "2 session(s) of other roles hold or wait for locks on items, orders (pid 4400 of role shop_app, pid 4401 "
        "of role report); their transaction age is not visible to switchyard_preflight: grant pg_read_all_stats"
    )
    assert check["status"] == "pass" and check["value"]["warnings"] == [warning]
    assert check["value"]["unseen_sessions"] == unseen
    assert check["message"] == (
        "database shop answers, not in recovery, no transaction it can see older than 60 s on the tables of the "
        f"pending migrations: items; warning: {warning}"
    )
    assert database_check(DB, 60)["value"]["warnings"] == []
