# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight's database check: what it reads. The migrations a release would run next (the files of
the given phases the history does not have) and the tables they touch - found by the db_migration code
(catalog, history, pglast) - then the sessions that hold or wait for a lock on one of those tables: those
whose transaction is older than the limit, and those whose transaction's age the connecting user cannot see
(other roles' sessions without pg_read_all_stats) - and pg_is_in_recovery(). Reads only."""

from __future__ import annotations

import os
import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.migrations import catalog
from ansible_collections.switchyard.release.plugins.module_utils.migrations.backfill import name_parts, quoted
from ansible_collections.switchyard.release.plugins.module_utils.migrations.history import History
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import leading_keywords, split

# A migrations file as the catalog lays them out: NNNN_name/expand.sql, backfill.yml or contract.sql.
FILE_KEY_RE = re.compile(
    r"^(\d+_[A-Za-z0-9_.-]+)/(" + "|".join(re.escape(f) for f in catalog.PHASE_FILES.values()) + r")$"
)

# Every session that holds or waits for a lock on the tables. Its transaction's age is NULL when the
# connecting user may not see it (a session of another role, without pg_read_all_stats): such a session is
# kept, not filtered out, and reported as one whose age is unknown.
LOCKING_SESSIONS_SQL = """
SELECT a.pid, a.usename, a.application_name, a.state, a.backend_type,
       extract(epoch FROM now() - a.xact_start)::float8 AS age,
       array_agg(DISTINCT l.relation::regclass::text) AS tables, bool_and(l.granted) AS granted,
       left(a.query, 2000) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.pid <> pg_backend_pid() AND l.relation = ANY(%s::regclass[])
GROUP BY a.pid, a.usename, a.application_name, a.state, a.backend_type, a.xact_start, a.query
ORDER BY age DESC NULLS LAST, a.pid
"""
LOCKING_SESSIONS_COLUMNS = (
    "pid",
    "user",
    "application_name",
    "state",
    "backend_type",
    "age",
    "tables",
    "granted",
    "query",
)

AUTOVACUUM = "autovacuum worker"
# An autovacuum run to prevent wraparound does not cancel itself for a waiting lock (the others do).
WRAPAROUND = "to prevent wraparound"


def check_migration_keys(files):
    """Refuse a key that is not NNNN_name/<phase file>, naming it (before anything is read)."""
    for key in files:
        if not isinstance(key, str) or not FILE_KEY_RE.match(key):
            raise InvalidParameters(
                f"migrations key {key!r}: give NNNN_name/<file> with <file> one of "
                f"{', '.join(catalog.PHASE_FILES.values())} (the layout of the migrations directory)"
            )


def write_migrations(files, directory):
    """The migration files given as {"NNNN_name/expand.sql": text} written under directory, for the catalog
    to read as db_migration does."""
    check_migration_keys(files)
    for key, text in files.items():
        version_dir, file_name = key.split("/")
        os.makedirs(os.path.join(directory, version_dir), exist_ok=True)
        with open(os.path.join(directory, version_dir, file_name), "w", encoding="utf-8") as handle:
            handle.write(text if isinstance(text, str) else str(text))
    return directory


def regclass_text(name):
    """A name as pglast reports it (schema.table, case kept) quoted for to_regclass."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def pending_tables(cur, path, phases, target, history_table, yaml_load):
    """The tables (as to_regclass text) the pending files of phases touch, in version order, once each:
    the relations of their SQL statements, the table of a backfill. A backfill whose contract ran is history."""
    history = History(history_table)
    versions = catalog.scan(path)
    contracted = set(history.applied(cur, "contract"))
    names = []
    for phase in phases:
        applied = set(history.applied(cur, phase))
        for migration in catalog.migrations(versions, phase, target):
            if migration.version in applied or (phase == "migrate" and migration.version in contracted):
                continue
            if phase == "migrate":
                spec = catalog.parse_backfill(migration, yaml_load)
                names.append(quoted(name_parts(spec["table"], "table", migration.path, qualified=True)))
            else:
                names.extend(regclass_text(t) for s in split(migration.text) for t in s.tables)
    existing = []
    for name in dict.fromkeys(names):
        cur.execute("SELECT to_regclass(%s)::text", (name,))
        found = cur.fetchone()[0]
        if found and found not in existing:  # a table the migrations create does not exist yet: nothing holds it
            existing.append(found)
    return existing


def yields_to_ddl(session):
    """An autovacuum worker cancels itself when DDL waits for its lock, unless it runs to prevent wraparound -
    told by its statement, so only when the connecting user can see it (age not NULL)."""
    return (
        session["backend_type"] == AUTOVACUUM
        and session["age"] is not None
        and WRAPAROUND not in (session["query"] or "")
    )


def split_sessions(sessions, max_age):
    """The sessions of LOCKING_SESSIONS_SQL (dicts) -> (long, unseen): those whose transaction is older than
    max_age (s), and those whose transaction age the connecting user cannot see. An autovacuum that yields to
    DDL is neither. The statement is described by its first keywords only: another session's text may carry
    secrets."""
    long, unseen = [], []
    for session in sessions:
        if yields_to_ddl(session):
            continue
        if session["age"] is None:
            unseen.append(
                {
                    "pid": session["pid"],
                    "user": session["user"],
                    "application_name": session["application_name"],
                    "tables": sorted(session["tables"]),
                    "granted": session["granted"],
                }
            )
        elif session["age"] > max_age:
            long.append(
                {
                    "pid": session["pid"],
                    "application_name": session["application_name"],
                    "state": session["state"],
                    "transaction_age_s": round(session["age"], 1),
                    "tables": sorted(session["tables"]),
                    "granted": session["granted"],
                    "statement": (
                        "autovacuum to prevent wraparound"  # does not yield to DDL: wait for it, or cancel it
                        if session["backend_type"] == AUTOVACUUM
                        else leading_keywords(session["query"])
                    ),
                }
            )
    return long, unseen


def locking_sessions(cur, tables, max_age):
    """split_sessions() of the sessions that hold or wait for a lock on tables."""
    if not tables:
        return [], []
    cur.execute(LOCKING_SESSIONS_SQL, (list(tables),))
    return split_sessions([dict(zip(LOCKING_SESSIONS_COLUMNS, row)) for row in cur.fetchall()], float(max_age))


def database_facts(conn, params, yaml_load, migrations_dir=None):
    """What the database check judges: database, user, in_recovery, tables, long_transactions and
    unseen_sessions (their transaction age not visible to user)."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), current_user, pg_is_in_recovery()")
        database, user, in_recovery = cur.fetchone()
        tables = []
        if migrations_dir:
            tables = pending_tables(
                cur,
                migrations_dir,
                params["migration_phases"],
                params["migrations_target"],
                params["history_table"],
                yaml_load,
            )
        long, unseen = locking_sessions(cur, tables, params["max_transaction_age"])
        return {
            "database": database,
            "user": user,
            "in_recovery": bool(in_recovery),
            "tables": tables,
            "long_transactions": long,
            "unseen_sessions": unseen,
        }
