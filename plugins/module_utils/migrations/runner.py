# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Applying the expand and contract SQL files: lint first, then, under the runner's advisory
lock, each pending file in version order - transactional statements together in one transaction
(or one transaction per statement when the file asks), statements PostgreSQL refuses in a
transaction on their own - each with a short lock_timeout retried with backoff.

Each statement group is recorded when it is done (a transactional group's row commits in the
group's own transaction; a group that runs outside a transaction is recorded right after it), and
the file's history row with its last group. So a file whose third group fails resumes at that group
on the next run instead of running its first two again. A changed file whose phase already ran is
refused; in a partly applied file only the groups not applied yet may change."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

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


@dataclass
class Group:
    """Statements that run together (one transaction, or one statement outside any), numbered from 1
    in the file; the unit the history records and a re-run resumes at."""

    number: int
    transactional: bool
    statements: list = field(repr=False)

    @property
    def line(self):
        return self.statements[0].line

    @property
    def words(self):
        """The first words of its first statement, to recognise it in a message."""
        words = " ".join(self.statements[0].sql.split()[:5])
        return words if len(words) <= 60 else words[:57] + "..."

    @property
    def checksum(self):
        """sha256 of its statements as PostgreSQL receives them (comments between statements excluded)."""
        return hashlib.sha256("\n;\n".join(s.sql for s in self.statements).encode("utf-8")).hexdigest()

    def describe(self):
        return f"{self.number} (line {self.line}, {self.words})"


def file_groups(statements, text):
    """The numbered groups of a file's statements, as segments() cuts them."""
    per_statement = bool(PER_STATEMENT_RE.search(text))
    return [
        Group(number, transactional, group)
        for number, (transactional, group) in enumerate(segments(statements, per_statement), start=1)
    ]


def describe(groups):
    return ", ".join(group.describe() for group in groups)


def first(count):
    """'group 1' or 'groups 1-3': the first count groups of a file."""
    return "group 1" if count == 1 else f"groups 1-{count}"


def applied_prefix(migration, groups, recorded):
    """How many leading groups of the file earlier runs applied (recorded: {group number: checksum}).

    A group that ran cannot change: its effects are in the database and the history says what it was.
    Groups not applied yet may change - nothing of them ran (a failed group was rolled back, a failed
    concurrent index build dropped) - so a failing statement can be fixed and the file re-run."""
    if not recorded:
        return 0
    numbers = sorted(recorded)
    fix = (
        f"restore {first(numbers[-1])} of {migration.path} as applied (only the groups after "
        f"{'it' if numbers[-1] == 1 else 'them'} may change), and put other changes in a new version"
    )
    if numbers != list(range(1, len(numbers) + 1)):
        raise MigrationError(
            f"{migration.path}: the history has statement groups {numbers} of its {migration.phase} phase, "
            "not groups 1 to n in a row: it was changed by hand; restore the rows of the groups that ran"
        )
    if numbers[-1] > len(groups):
        raise MigrationError(
            f"{migration.path}: statement group {numbers[-1]} of its {migration.phase} phase was applied, but the "
            f"file now has {len(groups)} group(s); {fix}"
        )
    for number in numbers:
        group = groups[number - 1]
        if group.checksum != recorded[number]:
            raise MigrationError(
                f"{migration.path}: statement group {group.describe()} changed after it was applied "
                f"({first(numbers[-1])} of this file ran; history checksum {recorded[number]}, now {group.checksum}); "
                f"{fix}"
            )
    return len(numbers)


@dataclass
class PendingFile:
    """A file to apply: its statements, its groups, and how many of them earlier runs applied."""

    migration: object
    statements: list = field(repr=False)
    groups: list = field(repr=False)
    done: int = 0

    @property
    def remaining(self):
        return self.groups[self.done :]


def failure_report(pending, failed, ran_unrecorded=False):
    """Which groups of the file are applied, which failed, which did not run, and where a re-run resumes.
    ran_unrecorded: the failed group's statement (outside a transaction) ran, but its record failed."""
    applied = pending.groups[: failed.number - 1]
    later = pending.groups[failed.number :]
    earlier = f" ({first(pending.done)} by an earlier run)" if pending.done else ""
    parts = [f"applied: {describe(applied)}{earlier}" if applied else "applied: none"]
    parts.append(f"failed: {failed.describe()}")
    if later:
        parts.append(f"not run: {describe(later)}")
    keep = f"; {first(len(applied))} must stay as {'it is' if len(applied) == 1 else 'they are'}" if applied else ""
    outcome = (
        f"Group {failed.number} ran but could not be recorded: a re-run runs it again (IF NOT EXISTS lets it)"
        if ran_unrecorded
        else f"Nothing of group {failed.number} was applied"
    )
    return (
        f"statement groups of this file - {'; '.join(parts)}. {outcome}; "
        f"a re-run resumes at group {failed.number}: fix the cause (the data, or the statements of group "
        f"{failed.number} and later{keep}) and run again"
    )


def groups_state(pending, failed):
    """The same as failure_report, as data for the failure result."""
    return [
        {
            "group": group.number,
            "line": group.line,
            "statement": group.words,
            "transactional": group.transactional,
            "state": "applied" if group.number < failed.number else "failed" if group is failed else "not run",
        }
        for group in pending.groups
    ]


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
    def __init__(self, conn, history, params, delays, check_mode, guard=None):
        self.conn = conn
        # Called before each statement group: the run's lease, which raises once the run lost its lock.
        self.guard = guard or (lambda: None)
        self.history = history
        self.params = params
        self.delays = delays
        self.check_mode = check_mode
        self.max_lock_wait_ms = 0.0
        self.rebuilt = []  # invalid indexes dropped and built again
        self.groups_applied = []  # {version, phase, group} of each group this run applied

    def settings(self):
        out = [("lock_timeout", self.params["lock_timeout"])]
        if self.params["statement_timeout"]:
            out.append(("statement_timeout", self.params["statement_timeout"]))
        return out

    def plan(self, migrations, applied, progress=None):
        """Pending files (PendingFile: the groups left) and lint findings; refuses changed files and
        changed applied groups. progress: History.progress() of the phase."""
        progress = progress or {}
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
            groups = file_groups(statements, migration.text)
            recorded = progress.get(migration.version, {}).get("groups", {})
            done = applied_prefix(migration, groups, recorded)
            if self.params["lint"] != "off":
                # The whole file is linted (a table created by an applied group is still "created in
                # this file"), but only what has yet to run is reported.
                after = groups[done - 1].statements[-1].line if done else 0
                if done < len(groups):
                    findings.extend(f for f in lint(statements, migration.phase, migration.path) if f.line > after)
            pending.append(PendingFile(migration, statements, groups, done))
        return pending, findings

    def apply(self, pending):
        migration = pending.migration
        started = time.monotonic()
        retries_total = 0
        ran = []
        unrecorded = []  # a statement that ran outside a transaction, not recorded yet

        def record_file(cur, retries_so_far):
            duration = (time.monotonic() - started) * 1000
            self.history.record(cur, migration, duration, retries_so_far, self.params["release_id"])

        if not pending.remaining:  # every group ran earlier; the groups after them left the file
            run_transaction(self.conn, [], lambda cur: record_file(cur, 0))
        for group in pending.remaining:
            self.guard()
            last = group.number == len(pending.groups)
            tables = sorted({t for s in group.statements for t in s.tables})

            def attempt(group=group, last=last, retries_so_far=retries_total):
                began = time.monotonic()

                def record(cur):
                    duration = (time.monotonic() - began) * 1000
                    self.history.record_group(cur, migration, group, duration, self.params["release_id"])
                    if last:  # the file's history row commits with its last group
                        record_file(cur, retries_so_far)

                if group.transactional:

                    def body(cur):
                        for statement in group.statements:
                            cur.execute(statement.sql)
                        record(cur)  # in the group's own transaction: both or neither

                    run_transaction(self.conn, self.settings(), body)
                else:
                    self.run_alone(group.statements[0])
                    unrecorded.append(group.number)
                    run_transaction(self.conn, [], record)  # right after it: it cannot share a transaction
                    unrecorded.remove(group.number)
                self.max_lock_wait_ms = max(self.max_lock_wait_ms, (time.monotonic() - began) * 1000)

            try:
                _done, retries = with_lock_retries(attempt, self.conn, tables, self.delays)
            except Exception as exc:
                report = failure_report(pending, group, ran_unrecorded=bool(unrecorded))
                details = {"groups": groups_state(pending, group)}
                if hasattr(exc, "blockers"):
                    raise MigrationError(
                        f"{migration.path}: {exc.msg}; {report}",
                        blocking_sessions=exc.blockers,
                        attempts=exc.attempts,
                        **details,
                    ) from exc
                error = str(getattr(exc, "pgerror", None) or exc).strip()
                raise MigrationError(
                    f"{migration.path}:{group.line}: {error}; {report}",
                    sqlstate=getattr(exc, "pgcode", None),
                    **details,
                ) from exc
            retries_total += retries
            ran.append(group.number)
            self.groups_applied.append({"version": migration.version, "phase": migration.phase, "group": group.number})
        return {
            "version": migration.version,
            "name": migration.name,
            "phase": migration.phase,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "retries": retries_total,
            "groups": len(pending.groups),
            "groups_run": ran,
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
