# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrate phase: a backfill in key-range batches, each its own short transaction that also
moves a checkpoint, so an interrupted run resumes where it stopped. Safe while both application
versions write: each batch touches only rows that still match `where`, holds their row locks for
one short transaction, and rows written later with larger keys are caught by later batches.
The key is an integer column, unique and indexed (the primary key, usually)."""

from __future__ import annotations

import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.migrations.locking import (
    LockBudgetExhausted,
    with_lock_retries,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import (
    MigrationError,
    run_transaction,
)

QUALIFIED_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def identifier(value, what, path):
    if not isinstance(value, str) or not QUALIFIED_IDENT_RE.match(value):
        raise MigrationError(f"{path}: {what}={value!r} is not a plain SQL identifier")
    return value


class Backfill:
    def __init__(self, conn, history, migration, spec, params, settings, delays, guard=None):
        self.conn, self.history, self.migration = conn, history, migration
        # Called before each batch: the run's lease, which raises once the run lost its lock.
        self.guard = guard or (lambda: None)
        self.table = identifier(spec["table"], "table", migration.path)
        self.key = identifier(spec["key"], "key", migration.path)
        self.set, self.where = spec["set"], spec["where"]
        self.batch_size = int(params["batch_size"] or spec.get("batch_size") or 1000)
        self.params, self.settings, self.delays = params, settings, delays
        # A batch is a key range: its upper bound comes from the key's index alone, then one UPDATE
        # touches the rows of that range that still need it. (A "first N rows WHERE <where>" query
        # lets the planner fall back to scanning the whole table when its estimates are stale.)
        self.upper_sql = (
            f"SELECT max(k) FROM (SELECT {self.key} AS k FROM {self.table} WHERE {self.key} > %(last)s"
            f" ORDER BY {self.key} LIMIT %(limit)s) AS keys"
        )
        self.update_sql = (
            f"UPDATE {self.table} SET {self.set}"
            f" WHERE {self.key} > %(last)s AND {self.key} <= %(upper)s AND ({self.where})"
        )

    def remaining(self, cur, last=None):
        cur.execute(
            f"SELECT count(*) FROM {self.table} WHERE (%(last)s::bigint IS NULL OR {self.key} > %(last)s::bigint)"
            f" AND ({self.where})",
            {"last": last},
        )
        return cur.fetchone()[0]

    def remaining_any(self):
        with self.conn.cursor() as cur:
            return self.remaining(cur)

    def plan(self):
        """Rows still to do, without changing anything (check mode)."""
        with self.conn.cursor() as cur:
            last, done = self.history.checkpoint(cur, self.migration.version)
            return {"rows_done": done, "rows_left": self.remaining(cur)}

    def run(self):
        with self.conn.cursor() as cur:
            last, done_before = self.history.checkpoint(cur, self.migration.version)
            left = self.remaining(cur, last)
            if left == 0 and last is not None:
                # Finished earlier: anything still to do (rows written since) is behind the checkpoint.
                left = self.remaining(cur)
                last = None
        stats = {
            "rows_total": done_before + left,
            "rows_done": done_before,
            "rows_this_run": 0,
            "batches": 0,
            "retries": 0,
            "resumed_from": last,
        }
        started = time.monotonic()
        batch_size = self.batch_size
        if left:
            with self.conn.cursor() as cur:
                if last is None:
                    cur.execute(f"SELECT min({self.key}) - 1 FROM {self.table}")
                    last = cur.fetchone()[0]
        while left:
            self.guard()

            def body(cur, limit=batch_size, last=last):
                cur.execute(self.upper_sql, {"last": last, "limit": limit})
                upper = cur.fetchone()[0]
                if upper is None:
                    return None, 0
                cur.execute(self.update_sql, {"last": last, "upper": upper})
                updated = cur.rowcount
                self.history.save_checkpoint(cur, self.migration.version, upper, stats["rows_done"] + updated)
                return upper, updated

            began = time.monotonic()
            try:
                (upper, updated), retries = with_lock_retries(
                    lambda body=body: run_transaction(self.conn, self.settings, body),
                    self.conn,
                    [self.table],
                    self.delays,
                )
            except LockBudgetExhausted as exc:
                raise MigrationError(
                    f"{self.migration.path}: {exc.msg}; the backfill stopped after {stats['rows_done']} rows "
                    "and resumes from its checkpoint on the next run",
                    blocking_sessions=exc.blockers,
                    attempts=exc.attempts,
                    backfill=[stats],
                ) from exc
            took = time.monotonic() - began
            stats["retries"] += retries
            if upper is None:
                break
            last = upper
            stats["batches"] += 1
            stats["rows_done"] += updated
            stats["rows_this_run"] += updated
            # Keep each batch's transaction short: halve the batch when it took too long.
            if self.params["max_batch_seconds"] and took > self.params["max_batch_seconds"]:
                batch_size = max(10, batch_size // 2)
            if self.params["pause_between_batches"]:
                time.sleep(self.params["pause_between_batches"])
        elapsed = time.monotonic() - started
        stats["seconds"] = round(elapsed, 3)
        stats["rows_per_second"] = round(stats["rows_this_run"] / elapsed, 1) if elapsed > 0 else None
        stats["final_batch_size"] = batch_size
        return stats
