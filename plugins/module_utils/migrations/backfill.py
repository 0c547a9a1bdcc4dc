# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrate phase: a backfill in key-range batches, each its own short transaction that also
moves a checkpoint, so an interrupted run resumes where it stopped. Safe while both application
versions write: each batch touches only rows that still match `where`, holds their row locks for
one short transaction, and rows written later with larger keys are caught by later batches.
The key is an integer column, unique and indexed (the primary key, usually)."""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.switchyard.release.plugins.module_utils.migrations.lint import lint
from ansible_collections.switchyard.release.plugins.module_utils.migrations.locking import (
    LockBudgetExhausted,
    with_lock_retries,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import (
    MigrationError,
    run_transaction,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import (
    COMMENT_TOKENS,
    SQLSyntaxError,
    split,
    walk,
)

try:
    from psycopg2 import sql
except ImportError:  # connection.HAS_PSYCOPG2 says so
    pass

try:
    from pglast import ast
    from pglast.parser import ParseError, scan

    DATA_CHANGES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
except ImportError:  # statements.HAS_PGLAST says so
    DATA_CHANGES = ()

# A name as the catalog spells it (case matters, reserved words welcome): quoted with sql.Identifier,
# so only what quoting cannot carry is refused - a double quote, a control character, more than 63 bytes -
# and `%`, which psycopg2 would read as a placeholder in the query text.
BAD_NAME_RE = re.compile(r'["%\x00-\x1f\x7f]')
NAME_HELP = "as the catalog spells it (case matters), without double quotes, % or control characters, at most 63 bytes"
PARAM_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A named placeholder of a set/where fragment: %(name)s, as psycopg2 writes them.
PLACEHOLDER_RE = re.compile(r"%\(([A-Za-z][A-Za-z0-9_]*)\)s")
LITERAL_TOKENS = ("SCONST", "USCONST", "BCONST", "XCONST")
PARAM_TYPES = (str, int, float, bool, type(None), datetime.date, datetime.datetime, datetime.time)
FRAGMENT_HELP = {
    "set": "the assignments of one UPDATE (column = expression, ...)",
    "where": "one boolean expression",
}


def name_parts(value, what, path, qualified=False):
    """The parts of a table (name or schema.name) or column name, each checked for sql.Identifier."""
    parts = value.split(".") if isinstance(value, str) else [value]
    if (
        not isinstance(value, str)
        or len(parts) > (2 if qualified else 1)
        or any(not part or BAD_NAME_RE.search(part) or len(part.encode("utf-8")) > 63 for part in parts)
    ):
        form = "name or schema.name" if qualified else "a column name (no table before it, no dot)"
        raise MigrationError(f"{path}: {what}={value!r} is not a valid {what}: give {form}, {NAME_HELP}")
    return parts


def quoted(parts):
    """The SQL text of a quoted name (the parts cannot hold a double quote): for pglast and to_regclass."""
    return ".".join(f'"{part}"' for part in parts)


def check_params(value, path):
    """backfill.yml's params: names (a letter first) mapped to values psycopg2 sends as parameters."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MigrationError(f"{path}: params must be a mapping of names to values, not {type(value).__name__}")
    for name, item in value.items():
        if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
            raise MigrationError(
                f"{path}: params key {name!r} is not a parameter name: a letter, then letters, digits or _"
            )
        items = item if isinstance(item, list) else [item]
        if not all(isinstance(one, PARAM_TYPES) for one in items):
            raise MigrationError(
                f"{path}: params.{name} must be a string, number, boolean, null, date or time, or a list of them"
            )
    return dict(value)


def prepare_fragment(text, option, path, params):
    """A set/where fragment checked with PostgreSQL's scanner, ready for psycopg2.

    Returns (text for psycopg2, text for pglast, placeholder names used). In the first, every `%`
    that is not a %(name)s placeholder - in a LIKE pattern, a modulo - is doubled, because psycopg2
    reads `%` as a placeholder whenever parameters are passed (and the batches always pass some); in
    the second, each placeholder is a $n parameter pglast parses. Refused, naming the option: a `;`,
    a comment (`--`, `/*`: either could swallow the rest of the statement), brackets that do not pair
    (`x) OR (true` would escape the batch's key range), and a placeholder without a value in params."""
    if not isinstance(text, str) or not text.strip():
        raise MigrationError(f"{path}: {option} must be {FRAGMENT_HELP[option]}, not {text!r}")

    def refuse(why):
        return MigrationError(
            f"{path}: {option}={text!r} is refused: {why}; {option} must be {FRAGMENT_HELP[option]}, "
            "without ';' or comments (write %(name)s for a value of params); nothing was run"
        )

    try:
        tokens = scan(text)
    except ParseError as exc:
        raise refuse(f"it does not scan as SQL ({exc.args[0]})") from None
    literals = []
    depth = 0
    for token in tokens:
        if token.name in COMMENT_TOKENS:
            raise refuse("it contains a comment")
        if token.name == "ASCII_59":
            raise refuse("a ';' would end the statement")
        if token.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif token.name in ("ASCII_41", "ASCII_93"):
            depth -= 1
            if depth < 0:
                raise refuse("a closing bracket without its opening one")
        first = text[token.start : token.start + 2]
        quoted_name = token.name == "IDENT" and (first[:1] == '"' or first.upper() == "U&")
        if token.name in LITERAL_TOKENS or quoted_name:
            literals.append((token.start, token.end))
    if depth:
        raise refuse("an opening bracket without its closing one")
    placeholders = [m for m in PLACEHOLDER_RE.finditer(text) if not any(a <= m.start() <= b for a, b in literals)]
    names = [m.group(1) for m in placeholders]
    unknown = sorted(set(names) - set(params))
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise refuse(f"placeholder(s) {', '.join(unknown)} not in params (params has: {known})")
    numbers = {name: index + 1 for index, name in enumerate(sorted(params))}
    for_psycopg, for_pglast, at = [], [], 0
    for m in placeholders:
        for_psycopg.append(text[at : m.start()].replace("%", "%%") + m.group(0))
        for_pglast.append(text[at : m.start()] + f"${numbers[m.group(1)]}")
        at = m.end()
    for_psycopg.append(text[at:].replace("%", "%%"))
    for_pglast.append(text[at:])
    return "".join(for_psycopg), "".join(for_pglast), set(names)


def check_update(set_text, where_text, table, key, path, phase="migrate"):
    """The batch's UPDATE as PostgreSQL will parse it: one plain UPDATE of the table - set alone adds
    no FROM, WHERE or RETURNING, and neither fragment holds another INSERT, UPDATE, DELETE or MERGE -
    linted like a migration file. Returns the lint findings."""

    def parse(text, option, kind):
        try:
            statements = split(text)
        except SQLSyntaxError as exc:
            raise MigrationError(
                f"{path}: {option} does not parse in `{text}`: {exc}; "
                + (f"{option} must be {FRAGMENT_HELP[option]}" if option in FRAGMENT_HELP else "see set and where")
            ) from None
        if len(statements) != 1 or not isinstance(statements[0].node, kind):
            raise MigrationError(f"{path}: {option} makes {len(statements)} statement(s), not one {kind.__name__}")
        node = statements[0].node
        nested = sorted({type(n).__name__ for n in walk(node) if n is not node and isinstance(n, DATA_CHANGES)})
        if nested:
            raise MigrationError(
                f"{path}: {option} is refused: it holds a data-changing statement ({', '.join(nested)}); "
                + (f"{option} must be {FRAGMENT_HELP[option]}" if option in FRAGMENT_HELP else "see set and where")
            )
        return statements

    alone = parse(f"UPDATE {table} SET {set_text}", "set", ast.UpdateStmt)[0].node
    returning = getattr(alone, "returningClause", None) or getattr(alone, "returningList", None)  # PG 18 / older
    if alone.fromClause or alone.whereClause or returning or alone.withClause:
        raise MigrationError(
            f"{path}: set={set_text!r} is refused: it adds FROM, WHERE or RETURNING to the UPDATE; "
            f"set must be {FRAGMENT_HELP['set']}; nothing was run"
        )
    parse(f"SELECT 1 FROM {table} WHERE ({where_text})", "where", ast.SelectStmt)
    statements = parse(
        f"UPDATE {table} SET {set_text} WHERE {key} > $900 AND {key} <= $901 AND ({where_text})",
        "set/where",
        ast.UpdateStmt,
    )
    return lint(statements, phase, path)


class Backfill:
    def __init__(self, conn, history, migration, spec, params, settings, delays, guard=None):
        self.conn, self.history, self.migration = conn, history, migration
        # Called before each batch: the run's lease, which raises once the run lost its lock.
        self.guard = guard or (lambda: None)
        path = migration.path
        table_parts = name_parts(spec["table"], "table", path, qualified=True)
        key_parts = name_parts(spec["key"], "key", path)
        self.values = check_params(spec.get("params"), path)
        set_sql, set_parsed, set_names = prepare_fragment(spec["set"], "set", path, self.values)
        where_sql, where_parsed, where_names = prepare_fragment(spec["where"], "where", path, self.values)
        unused = sorted(set(self.values) - set_names - where_names)
        if unused:
            raise MigrationError(f"{path}: params {', '.join(unused)} not used by set or where (a typo?)")
        # The lint findings of the batch's UPDATE (the manager reports them as the lint option says).
        self.findings = check_update(set_parsed, where_parsed, quoted(table_parts), quoted(key_parts), path)
        # For to_regclass (the sessions holding locks on the table) and messages.
        self.table = quoted(table_parts)
        table, key = sql.Identifier(*table_parts), sql.Identifier(*key_parts)
        self.batch_size = int(params["batch_size"] or spec.get("batch_size") or 1000)
        self.params, self.settings, self.delays = params, settings, delays
        names = {"table": table, "key": key, "set": sql.SQL(set_sql), "where": sql.SQL(where_sql)}
        # A batch is a key range: its upper bound comes from the key's index alone, then one UPDATE
        # touches the rows of that range that still need it. (A "first N rows WHERE <where>" query
        # lets the planner fall back to scanning the whole table when its estimates are stale.)
        # Every query that holds a fragment is run with parameters, so its doubled `%` read as one.
        self.upper_sql = sql.SQL(
            "SELECT max(k) FROM (SELECT {key} AS k FROM {table} WHERE {key} > %(_last)s"
            " ORDER BY {key} LIMIT %(_limit)s) AS keys"
        ).format(**names)
        self.update_sql = sql.SQL(
            "UPDATE {table} SET {set} WHERE {key} > %(_last)s AND {key} <= %(_upper)s AND ({where})"
        ).format(**names)
        self.remaining_sql = sql.SQL(
            "SELECT count(*) FROM {table} WHERE (%(_last)s::bigint IS NULL OR {key} > %(_last)s::bigint) AND ({where})"
        ).format(**names)
        self.start_sql = sql.SQL("SELECT min({key}) - 1 FROM {table}").format(**names)

    def remaining(self, cur, last=None):
        cur.execute(self.remaining_sql, {**self.values, "_last": last})
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
                    cur.execute(self.start_sql)
                    last = cur.fetchone()[0]
        while left:
            self.guard()

            def body(cur, limit=batch_size, last=last):
                cur.execute(self.upper_sql, {"_last": last, "_limit": limit})
                upper = cur.fetchone()[0]
                if upper is None:
                    return None, 0
                cur.execute(self.update_sql, {**self.values, "_last": last, "_upper": upper})
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
