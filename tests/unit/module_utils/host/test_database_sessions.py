"""Which sessions on the pending migrations' tables the database check counts: rows as LOCKING_SESSIONS_SQL
returns them (pg_stat_activity joined to pg_locks), autovacuum's statements as PostgreSQL 15 writes them."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.host.database import (
    LOCKING_SESSIONS_COLUMNS,
    split_sessions,
)


def row(pid, user, application, state, backend_type, age, query, granted=True):
    values = (pid, user, application, state, backend_type, age, ["items"], granted, query)
    return dict(zip(LOCKING_SESSIONS_COLUMNS, values, strict=True))


CLIENT = row(4242, "switchyard", "psql", "idle in transaction", "client backend", 3.2, "LOCK TABLE items")
AUTOVACUUM = row(4300, None, "", "active", "autovacuum worker", 120.0, "autovacuum: VACUUM ANALYZE public.items")
WRAPAROUND = row(
    4301, None, "", "active", "autovacuum worker", 120.0, "autovacuum: VACUUM public.items (to prevent wraparound)"
)
# A session of another role seen without pg_read_all_stats: no xact_start (age), state, backend type or query.
HIDDEN = row(4400, "shop_app", "web", None, None, None, "<insufficient privilege>", granted=False)


def test_an_autovacuum_that_yields_to_ddl_is_not_counted_but_one_against_wraparound_is() -> None:
    long, unseen = split_sessions([AUTOVACUUM, WRAPAROUND, CLIENT], 1)
    assert [s["pid"] for s in long] == [4301, 4242] and unseen == []
    assert long[0]["statement"] == "autovacuum to prevent wraparound" and long[1]["statement"] == "LOCK"


def test_a_session_whose_age_is_hidden_is_kept_apart_not_dropped() -> None:
    long, unseen = split_sessions([HIDDEN, CLIENT], 60)
    assert long == []  # 3.2 s is younger than 60 s
    assert unseen == [
        {"pid": 4400, "user": "shop_app", "application_name": "web", "tables": ["items"], "granted": False}
    ]


def test_a_transaction_is_long_only_when_older_than_the_limit() -> None:
    assert split_sessions([CLIENT], 3.2) == ([], [])
    assert [s["pid"] for s in split_sessions([CLIENT], 3.1)[0]] == [4242]


def test_an_autovacuum_whose_statement_is_hidden_is_not_assumed_to_yield() -> None:
    hidden = row(4302, None, "", None, "autovacuum worker", None, "<insufficient privilege>")
    assert [s["pid"] for s in split_sessions([hidden], 60)[1]] == [4302]
