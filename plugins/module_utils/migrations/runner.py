# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Applying the expand and contract SQL files: lint first, then, under the runner's advisory
lock, each pending file in version order - transactional statements together in one transaction
(or one transaction per statement when the file asks), statements PostgreSQL refuses in a
transaction on their own - each with a short lock_timeout retried with backoff, and the history
row written with the checksum. A changed file whose phase already ran is refused."""

from __future__ import annotations

import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.migrations.lint import lint
from ansible_collections.switchyard.release.plugins.module_utils.migrations.locking import with_lock_retries
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import SQLSyntaxError, split

PER_STATEMENT_RE = re.compile(r"^\s*--\s*switchyard:transaction\s+per-statement\b", re.MULTILINE)
INDEX_NAME_RE = re.compile(
    r"\bINDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\"[^\"]+\"|[A-Za-z_][A-Za-z0-9_$]*)", re.IGNORECASE
)


class MigrationError(SwitchyardError):
    """A migration refused or failed; details say which and what PostgreSQL said."""


VALIDATE_RE = re.compile(r"\bVALIDATE\s+CONSTRAINT\b", re.IGNORECASE)


def runs_alone(statement):
    """VALIDATE CONSTRAINT scans the table: in a transaction with the ADD CONSTRAINT before it, the
    ACCESS EXCLUSIVE lock of that one would be held for the whole scan."""
    return not statement.transactional or bool(VALIDATE_RE.search(statement.sql))


def segments(statements, per_statement):
    """Groups that run together: consecutive transactional statements (or each alone), and each
    statement that cannot run in a transaction, or must not share one, on its own."""
    groups, current = [], []
    for statement in statements:
        if not per_statement and not runs_alone(statement):
            current.append(statement)
            continue
        if current:
            groups.append((True, current))
            current = []
        groups.append((statement.transactional, [statement]))
    if current:
        groups.append((True, current))
    return groups


def run_transaction(conn, settings, body):
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            for name, value in settings:
                cur.execute(f"SET LOCAL {name} = %s", (value,))
            result = body(cur)
            cur.execute("COMMIT")
            return result
        except BaseException:
            cur.execute("ROLLBACK")
            raise


class PhaseRunner:
    def __init__(self, conn, history, params, delays, check_mode):
        self.conn = conn
        self.history = history
        self.params = params
        self.delays = delays
        self.check_mode = check_mode
        self.max_lock_wait_ms = 0.0
        self.rebuilt = []  # invalid indexes dropped and built again

    def settings(self):
        out = [("lock_timeout", self.params["lock_timeout"])]
        if self.params["statement_timeout"]:
            out.append(("statement_timeout", self.params["statement_timeout"]))
        return out

    def plan(self, migrations, applied):
        """Pending migrations with their statements and lint findings; refuses changed files."""
        pending, findings = [], []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.path} changed after its {migration.phase} phase was applied: "
                        f"history checksum {applied[migration.version]}, file checksum {migration.checksum}; "
                        "write a new version instead of editing an applied one"
                    )
                continue
            try:
                statements = split(migration.text)
            except SQLSyntaxError as exc:
                raise MigrationError(f"{migration.path}: does not parse: {exc}") from exc
            if self.params["lint"] != "off":
                findings.extend(lint(statements, migration.phase, migration.path))
            pending.append((migration, statements))
        return pending, findings

    def apply(self, migration, statements):
        started = time.monotonic()
        retries_total = 0
        per_statement = bool(PER_STATEMENT_RE.search(migration.text))
        groups = segments(statements, per_statement)
        for index, (transactional, group) in enumerate(groups):
            last = index == len(groups) - 1
            tables = sorted({t for s in group for t in s.tables})

            def attempt(group=group, transactional=transactional, last=last, retries_so_far=retries_total):
                began = time.monotonic()
                if transactional:

                    def body(cur):
                        for statement in group:
                            cur.execute(statement.sql)
                        if last:  # the history row commits with the file's last transaction
                            self.history.record(
                                cur,
                                migration,
                                (time.monotonic() - started) * 1000,
                                retries_so_far,
                                self.params["release_id"],
                            )

                    run_transaction(self.conn, self.settings(), body)
                else:
                    self.run_alone(group[0])
                    if last:
                        run_transaction(
                            self.conn,
                            [],
                            lambda cur: self.history.record(
                                cur,
                                migration,
                                (time.monotonic() - started) * 1000,
                                retries_so_far,
                                self.params["release_id"],
                            ),
                        )
                self.max_lock_wait_ms = max(self.max_lock_wait_ms, (time.monotonic() - began) * 1000)

            try:
                _done, retries = with_lock_retries(attempt, self.conn, tables, self.delays)
            except Exception as exc:
                if hasattr(exc, "blockers"):
                    raise MigrationError(
                        f"{migration.path}: {exc.msg}; nothing of this statement group was applied",
                        blocking_sessions=exc.blockers,
                        attempts=exc.attempts,
                    ) from exc
                raise MigrationError(
                    f"{migration.path}:{group[0].line}: {getattr(exc, 'pgerror', None) or exc}".strip(),
                    sqlstate=getattr(exc, "pgcode", None),
                ) from exc
            retries_total += retries
        return {
            "version": migration.version,
            "name": migration.name,
            "phase": migration.phase,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "retries": retries_total,
        }

    def run_alone(self, statement):
        """A statement that cannot run in a transaction. It waits for older snapshots rather than
        for table locks, so the short DDL lock_timeout does not apply (statement_timeout neither).
        An index left INVALID by an interrupted concurrent build would be skipped by IF NOT EXISTS:
        drop it first, and drop it again if this build fails, so no half-built index stays behind
        (a unique one would still enforce uniqueness)."""
        match = INDEX_NAME_RE.search(statement.sql) if statement.kind == "IndexStmt" else None
        with self.conn.cursor() as cur:
            if match:
                invalid = self.invalid_index(cur, match.group(1).strip('"'))
                if invalid:
                    cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {invalid}")
                    self.rebuilt.append(invalid)
            try:
                cur.execute(statement.sql)
            except Exception:
                if match:
                    invalid = self.invalid_index(cur, match.group(1).strip('"'))
                    if invalid:
                        cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {invalid}")
                raise

    @staticmethod
    def invalid_index(cur, name):
        cur.execute(
            "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE NOT i.indisvalid AND c.relname = %s",
            (name,),
        )
        row = cur.fetchone()
        return row[0] if row else None
