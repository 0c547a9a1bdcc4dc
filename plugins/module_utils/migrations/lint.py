# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lint of migration SQL: statements that block the live application (long locks, table rewrites, full
scans under ACCESS EXCLUSIVE) or break the version still running (phase violations), each with its safe
recipe. A clean lint is not proof of safety, only the absence of the known traps (squawk,
strong_migrations, pgroll).

Statements on a table created earlier in the same file are exempt from the lock rules: nobody uses
that table yet. Table names are compared as written (`items` and `public.items` differ).
A statement opts out of a rule with `-- switchyard:allow <rule-id> <reason>` (see statements.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import qualified, walk

try:
    from pglast import ast, enums
except ImportError:  # statements.HAS_PGLAST says so
    pass

PHASES = ("expand", "migrate", "contract")
NOT_NULL_RECIPE = (
    "add the column nullable in expand, backfill it in migrate, then in contract: ADD CONSTRAINT c CHECK (col IS "
    "NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; ALTER COLUMN col SET NOT NULL; DROP CONSTRAINT c (each statement "
    "in its own transaction)"
)
EXPAND = "create new tables and columns in expand, before the new code that needs them"
BACKFILL = "change data in the migrate phase (backfill.yml): batches of rows, each in its own short transaction"
UNIQUE_RECIPE = (
    "CREATE UNIQUE INDEX CONCURRENTLY idx ON table (cols), then ALTER TABLE table ADD CONSTRAINT name "
    "UNIQUE (or PRIMARY KEY) USING INDEX idx"
)
# rule id -> safe recipe; the message of each finding says what is wrong with that statement.
RULES = {
    "require-concurrent-index": "CREATE INDEX CONCURRENTLY / DROP INDEX CONCURRENTLY (outside a transaction; "
    "a failed build leaves an INVALID index: drop it and build again)",
    "add-column-not-null-without-default": NOT_NULL_RECIPE,
    "volatile-default": "add the column without a default (or with a constant / now()), set the default for new "
    "rows with ALTER COLUMN ... SET DEFAULT, and backfill existing rows in migrate",
    "constraint-without-not-valid": "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a "
    "separate statement and transaction (it scans under SHARE UPDATE EXCLUSIVE: reads and writes go on)",
    "column-type-change": "add a column of the new type in expand, write both from the new code, backfill in "
    "migrate, drop the old column in contract (a catalog-only change such as varchar(n) -> text may be allowed "
    "with a reason)",
    "rename-or-drop-in-expand": "keep the old column/table/constraint until contract, when no old version runs: "
    "add the new name in expand, backfill, and drop the old one in contract",
    "ddl-in-wrong-phase": "new columns and tables go in expand (before the new code); data changes go in the "
    "batched migrate phase (backfill.yml)",
    "set-not-null-without-validated-check": "earlier in the same file: ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT "
    "VALID; VALIDATE CONSTRAINT c; then SET NOT NULL uses it without a scan (PostgreSQL 12+); then DROP CONSTRAINT c",
    "allow-without-reason": "write `-- switchyard:allow <rule-id> <reason>` with a known rule id and the reason",
}
# ADD COLUMN defaults that are computed per row, so PostgreSQL rewrites the table (now() and constants do not).
VOLATILE_FUNCTIONS = {
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "nextval",
    "txid_current",
    "pg_current_xact_id",
}
SERIAL_TYPES = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"}


@dataclass
class Finding:
    """One rule broken by one statement, with where, why and what to do instead."""

    file: str
    line: int
    rule: str
    message: str
    recipe: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message, "recipe": self.recipe}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message}. Instead: {self.recipe}"


def lint(statements, phase, path) -> list[Finding]:
    """Findings for the statements of the `phase` file at `path`, in statement order."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
    state = _FileState()
    findings = []
    for statement in statements:
        for rule, message, *recipe in _check(statement.node, phase, state):
            if rule not in statement.allowed:
                findings.append(Finding(str(path), statement.line, rule, message, recipe[0] if recipe else RULES[rule]))
        for line, rule, reason in statement.allow_comments:
            problem = _allow_problem(rule, reason)
            if problem:
                findings.append(
                    Finding(str(path), line, "allow-without-reason", problem, RULES["allow-without-reason"])
                )
        state.update(statement.node)
    return findings


def _allow_problem(rule, reason):
    if not rule:
        return "allow comment names no rule"
    if rule not in RULES or rule == "allow-without-reason":
        return f"allow comment names {rule!r}, which is not a rule that can be allowed"
    return None if reason else f"allow comment for {rule} gives no reason: the finding is kept"


class _FileState:
    """What earlier statements of the file did: tables created, NOT NULL checks added and validated."""

    def __init__(self):
        self.created = set()
        self.not_null_checks = {}  # (table, constraint) -> column, for CHECK (column IS NOT NULL)
        self.validated = set()  # (table, column) proven NOT NULL by a validated check

    def update(self, node):
        if isinstance(node, (ast.CreateStmt, ast.CreateTableAsStmt)):
            self.created.add(qualified(node.relation if isinstance(node, ast.CreateStmt) else node.into.rel))
        if not isinstance(node, ast.AlterTableStmt):
            return
        table = qualified(node.relation)
        for cmd in node.cmds:
            column = _not_null_check_column(cmd.def_) if _is(cmd, "AT_AddConstraint") else None
            if column and cmd.def_.skip_validation:
                self.not_null_checks[(table, cmd.def_.conname)] = column
            elif column:
                self.validated.add((table, column))
            if _is(cmd, "AT_ValidateConstraint") and (table, cmd.name) in self.not_null_checks:
                self.validated.add((table, self.not_null_checks[(table, cmd.name)]))


def _is(cmd, subtype):
    return cmd.subtype.name == subtype


def _not_null_check_column(constraint):
    """The column of a `CHECK (column IS NOT NULL)` constraint, else None."""
    if not isinstance(constraint, ast.Constraint) or constraint.contype != enums.ConstrType.CONSTR_CHECK:
        return None
    expr = constraint.raw_expr
    if not isinstance(expr, ast.NullTest) or expr.nulltesttype != enums.NullTestType.IS_NOT_NULL:
        return None
    if not isinstance(expr.arg, ast.ColumnRef) or len(expr.arg.fields) != 1:
        return None
    return getattr(expr.arg.fields[0], "sval", None)


def _check(node, phase, state):
    """(rule, message) for each problem of one statement, or (rule, message, recipe) for a special case."""
    kind = type(node).__name__
    table = qualified(node.relation) if getattr(node, "relation", None) is not None else None
    existing = table is not None and table not in state.created
    if kind == "IndexStmt" and not node.concurrent and existing:
        name = f" {node.idxname}" if node.idxname else ""
        yield "require-concurrent-index", f"CREATE INDEX{name} on {table} without CONCURRENTLY blocks writes to it"
    if kind == "DropStmt" and node.removeType == enums.ObjectType.OBJECT_INDEX and not node.concurrent:
        names = ", ".join(".".join(part.sval for part in obj) for obj in node.objects)
        yield "require-concurrent-index", f"DROP INDEX {names} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table"
    if kind == "CreateStmt" and phase == "contract":
        yield "ddl-in-wrong-phase", f"CREATE TABLE {table} in contract: the new code needs it from expand on", EXPAND
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt") and phase != "migrate" and existing:
        verb = kind[: -len("Stmt")].upper()
        message = f"{verb} on {table} in {phase}: an unbatched data change while the application is live"
        yield "ddl-in-wrong-phase", message, BACKFILL
    if phase != "contract":
        yield from _check_rename_drop(node, kind, phase)
    if kind == "AlterTableStmt" and node.objtype == enums.ObjectType.OBJECT_TABLE:
        for cmd in node.cmds:
            yield from _check_alter(cmd, table, existing, phase, state)


def _check_rename_drop(node, kind, phase):
    """RENAME / DROP of columns, tables and constraints while the old code still runs."""
    breaks = f"in {phase} breaks the old code that still uses it; it belongs in contract"
    if kind == "RenameStmt" and node.renameType.name in ("OBJECT_TABLE", "OBJECT_COLUMN"):
        what = f"column {node.subname}" if node.subname else "table"
        yield "rename-or-drop-in-expand", f"RENAME of {what} of {qualified(node.relation)} {breaks}"
    if kind == "DropStmt" and node.removeType == enums.ObjectType.OBJECT_TABLE:
        names = ", ".join(".".join(part.sval for part in obj) for obj in node.objects)
        yield "rename-or-drop-in-expand", f"DROP TABLE {names} {breaks}"
    if kind == "AlterTableStmt":
        for cmd in node.cmds:
            if cmd.subtype.name in ("AT_DropColumn", "AT_DropConstraint"):
                what = "column" if _is(cmd, "AT_DropColumn") else "constraint"
                yield (
                    "rename-or-drop-in-expand",
                    f"DROP {what.upper()} {cmd.name} on {qualified(node.relation)} {breaks}",
                )


def _check_alter(cmd, table, existing, phase, state):
    """The ALTER TABLE subcommand rules."""
    if _is(cmd, "AT_AddColumn") and phase == "contract":
        yield (
            "ddl-in-wrong-phase",
            f"ADD COLUMN {cmd.def_.colname} to {table} in contract: the new code needs it",
            EXPAND,
        )
    if not existing:
        return
    if _is(cmd, "AT_AddColumn"):
        yield from _check_add_column(cmd.def_, table)
    if _is(cmd, "AT_AddConstraint"):
        yield from _check_constraint(cmd.def_, table)
    if _is(cmd, "AT_AlterColumnType"):
        yield "column-type-change", f"ALTER COLUMN {cmd.name} TYPE on {table} rewrites it under ACCESS EXCLUSIVE"
    if _is(cmd, "AT_SetNotNull") and (table, cmd.name) not in state.validated:
        yield (
            "set-not-null-without-validated-check",
            f"SET NOT NULL on {table}.{cmd.name} scans the whole table under ACCESS EXCLUSIVE",
        )


def _check_add_column(column, table):
    constraints = column.constraints or ()
    types = {c.contype for c in constraints}
    type_name = column.typeName.names[-1].sval if column.typeName else ""
    where = f"ADD COLUMN {column.colname} to {table}"
    defaulted = types & {enums.ConstrType.CONSTR_DEFAULT, enums.ConstrType.CONSTR_IDENTITY} or type_name in SERIAL_TYPES
    not_null = column.is_not_null or types & {enums.ConstrType.CONSTR_NOTNULL, enums.ConstrType.CONSTR_PRIMARY}
    if not_null and not defaulted and enums.ConstrType.CONSTR_GENERATED not in types:
        yield "add-column-not-null-without-default", f"{where} NOT NULL without a DEFAULT fails on existing rows"
    volatile = sorted(
        {
            function.funcname[-1].sval
            for c in constraints
            if c.contype == enums.ConstrType.CONSTR_DEFAULT
            for function in walk(c.raw_expr)
            if isinstance(function, ast.FuncCall) and function.funcname[-1].sval.lower() in VOLATILE_FUNCTIONS
        }
    )
    if volatile:
        yield "volatile-default", f"{where} with volatile default {', '.join(volatile)}() rewrites the table"
    if type_name in SERIAL_TYPES or types & {enums.ConstrType.CONSTR_IDENTITY, enums.ConstrType.CONSTR_GENERATED}:
        yield "volatile-default", f"{where} as {type_name or 'generated'} column fills every row: a table rewrite"
    for constraint in constraints:
        yield from _check_constraint(constraint, table, inline=True)


def _check_constraint(constraint, table, inline=False):
    """CHECK / FOREIGN KEY must be NOT VALID; UNIQUE / PRIMARY KEY must use an index built concurrently."""
    contype = constraint.contype
    name = f" {constraint.conname}" if constraint.conname else ""
    if contype in (enums.ConstrType.CONSTR_CHECK, enums.ConstrType.CONSTR_FOREIGN) and not constraint.skip_validation:
        what = "CHECK" if contype == enums.ConstrType.CONSTR_CHECK else "FOREIGN KEY"
        where = "inline in ADD COLUMN" if inline else "without NOT VALID"
        yield "constraint-without-not-valid", f"{what}{name} on {table} {where} scans it while holding its lock"
    if contype in (enums.ConstrType.CONSTR_UNIQUE, enums.ConstrType.CONSTR_PRIMARY) and not constraint.indexname:
        what = "UNIQUE" if contype == enums.ConstrType.CONSTR_UNIQUE else "PRIMARY KEY"
        message = f"{what}{name} on {table} builds its index under ACCESS EXCLUSIVE: reads and writes wait"
        yield "constraint-without-not-valid", message, UNIQUE_RECIPE
