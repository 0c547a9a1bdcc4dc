# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting without blocking: the runner's advisory lock (polled try-lock, so a second runner
never queues behind DDL), lock-timeout retries with bounded backoff and jitter, and the sessions
that held the locks when the budget ran out."""

from __future__ import annotations

import random
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import leading_keywords

LOCK_NOT_AVAILABLE = "55P03"

BLOCKERS_SQL = """
SELECT DISTINCT a.pid, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::int AS transaction_age_s, left(a.query, 2000) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND a.pid <> pg_backend_pid() AND l.relation = ANY(%s::regclass[])
ORDER BY transaction_age_s DESC NULLS LAST
"""


class RunnerLockTimeout(SwitchyardError):
    """Another runner held the advisory lock longer than runner_lock_wait."""


class LockBudgetExhausted(Exception):
    def __init__(self, msg, blockers, attempts):
        super().__init__(msg)
        self.msg = msg
        self.blockers = blockers
        self.attempts = attempts


def runner_lock_key(history_table):
    """One advisory lock per history table: runners of other schemas do not wait on each other."""
    return f"switchyard:{history_table}"


def take_runner_lock(cur, history_table, wait_seconds, poll=0.5, clock=time.monotonic, sleep=time.sleep):
    """Poll pg_try_advisory_lock until held or wait_seconds ran out; returns the seconds waited."""
    started = clock()
    while True:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (runner_lock_key(history_table),))
        if cur.fetchone()[0]:
            return clock() - started
        if clock() - started >= wait_seconds:
            cur.execute(
                "SELECT a.pid, a.application_name, a.backend_start::text FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid",
                (runner_lock_key(history_table),),
            )
            holders = [{"pid": p, "application_name": n, "since": s} for p, n, s in cur.fetchall()]
            raise RunnerLockTimeout(
                f"another db_migration runner holds the lock of {history_table} (held by {holders or 'unknown'}) "
                f"after {wait_seconds} s of waiting"
            )
        sleep(poll)


def release_runner_lock(cur, history_table):
    cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (runner_lock_key(history_table),))


def backoff_delays(attempts, base, cap, rng=random.random):
    """Exponential backoff with full jitter, bounded: one delay per retry after the first try."""
    return [min(cap, base * (2**n)) * (0.5 + rng() / 2) for n in range(max(0, attempts - 1))]


def blockers(cur, tables):
    """Sessions holding locks on tables (those that exist); empty when none is known.

    Each says pid, application_name, state, transaction_age_s and statement - the first keywords
    of its current (or last) statement only: another session's query text may carry secrets in
    its literals (a password, a token), and the failure goes to logs and job events."""
    existing = []
    for table in tables:
        cur.execute("SELECT to_regclass(%s)::text", (table,))
        name = cur.fetchone()[0]
        if name:
            existing.append(name)
    if not existing:
        return []
    cur.execute(BLOCKERS_SQL, (existing,))
    return [
        {
            "pid": pid,
            "application_name": name,
            "state": state,
            "transaction_age_s": age,
            "statement": leading_keywords(query),
        }
        for pid, name, state, age, query in cur.fetchall()
    ]


def describe(found):
    """The blockers for a message: pid, application, state, age and statement keywords."""
    return "; ".join(
        f"pid {b['pid']} (application {b['application_name'] or '-'}, {b['state'] or 'state unknown'}"
        + (f" for {b['transaction_age_s']} s" if b["transaction_age_s"] is not None else "")
        + (f", {b['statement']}" if b["statement"] else "")
        + ")"
        for b in found[:5]
    ) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")


def with_lock_retries(attempt, conn, tables, delays, on_retry=None, sleep=time.sleep):
    """Run attempt() until it does not hit a lock timeout; after the last delay, raise with blockers.

    attempt() runs one transaction and rolls it back when it fails, so retrying is safe.
    """
    retries = 0
    while True:
        try:
            return attempt(), retries
        except Exception as exc:  # psycopg2.Error subclasses carry pgcode
            if getattr(exc, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
            with conn.cursor() as cur:
                found = blockers(cur, tables)
            if retries >= len(delays):
                raise LockBudgetExhausted(
                    f"lock timeout {retries + 1} time(s) in a row on {', '.join(tables) or 'the statement'}; "
                    f"blocked by {len(found)} session(s)" + (f": {describe(found)}" if found else ""),
                    found,
                    retries + 1,
                ) from exc
            if on_retry:
                on_retry(retries, found)
            sleep(delays[retries])
            retries += 1
