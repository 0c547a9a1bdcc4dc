# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A migration file as the statements PostgreSQL will see, split by PostgreSQL's own parser (pglast).

Splitting on semicolons breaks on strings, dollar-quoted function bodies and comments; pglast does not.
Each statement says whether PostgreSQL accepts it inside a transaction block and which table-level
lock it takes (PostgreSQL 15 documentation, ALTER TABLE and "Explicit Locking"), so the runner can
group statements and check mode can show what each one would block.

pglast 8 quirks handled here: RawStmt.stmt_location/stmt_len are already converted from byte offsets
of the UTF-8 text to str indexes; stmt_len is 0 for the last statement (to the end of the text); the
location may include the comments and whitespace before the statement (older parsers) or not
(PostgreSQL 18's), so the statement's first token is looked up with pglast's scanner.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

try:
    from pglast import ast, enums, parse_sql
    from pglast.parser import ParseError, scan

    HAS_PGLAST = True
    PGLAST_IMPORT_ERROR = None
except ImportError as exc:  # the module reports it with missing_required_lib
    HAS_PGLAST = False
    PGLAST_IMPORT_ERROR = exc

# Table-level lock modes, weakest first (PostgreSQL "Explicit Locking"); LOCK TABLE's mode numbers are 1-based.
LOCKS = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
ACCESS_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE_ROW_EXCLUSIVE = (
    "ACCESS EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE ROW EXCLUSIVE",
)

# ALTER TABLE subcommands weaker than ACCESS EXCLUSIVE (tablecmds.c AlterTableGetLockLevel, PostgreSQL 15).
ALTER_TABLE_LOCKS = {
    "AT_SetStatistics": SHARE_UPDATE_EXCLUSIVE,
    "AT_SetOptions": SHARE_UPDATE_EXCLUSIVE,
    "AT_ResetOptions": SHARE_UPDATE_EXCLUSIVE,
    "AT_ClusterOn": SHARE_UPDATE_EXCLUSIVE,
    "AT_DropCluster": SHARE_UPDATE_EXCLUSIVE,
    "AT_ValidateConstraint": SHARE_UPDATE_EXCLUSIVE,
    "AT_AttachPartition": SHARE_UPDATE_EXCLUSIVE,
    "AT_DetachPartitionFinalize": SHARE_UPDATE_EXCLUSIVE,
    "AT_EnableTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableAlwaysTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableReplicaTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableTrigAll": SHARE_ROW_EXCLUSIVE,
    "AT_EnableTrigUser": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrig": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrigAll": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrigUser": SHARE_ROW_EXCLUSIVE,
}
# Storage parameters that ALTER TABLE SET/RESET changes under SHARE UPDATE EXCLUSIVE (others: ACCESS EXCLUSIVE).
LIGHT_RELOPTIONS = ("fillfactor", "parallel_workers", "toast_tuple_target", "log_autovacuum_min_duration")
LIGHT_RELOPTION_PREFIXES = ("autovacuum_", "vacuum_")
# Relations a DROP names; with the objects below, what DROP / RENAME takes ACCESS EXCLUSIVE on.
DROPPED_RELATIONS = (
    "OBJECT_TABLE",
    "OBJECT_INDEX",
    "OBJECT_VIEW",
    "OBJECT_MATVIEW",
    "OBJECT_SEQUENCE",
    "OBJECT_FOREIGN_TABLE",
)
RELATION_OBJECTS = DROPPED_RELATIONS + (
    "OBJECT_COLUMN",
    "OBJECT_TABCONSTRAINT",
    "OBJECT_TRIGGER",
    "OBJECT_RULE",
    "OBJECT_POLICY",
)
FIXED_LOCKS = {
    "InsertStmt": "ROW EXCLUSIVE",
    "UpdateStmt": "ROW EXCLUSIVE",
    "DeleteStmt": "ROW EXCLUSIVE",
    "MergeStmt": "ROW EXCLUSIVE",
    "CreateTrigStmt": SHARE_ROW_EXCLUSIVE,
    "TruncateStmt": ACCESS_EXCLUSIVE,
    "ClusterStmt": ACCESS_EXCLUSIVE,
    "CreatePolicyStmt": ACCESS_EXCLUSIVE,
    "AlterPolicyStmt": ACCESS_EXCLUSIVE,
    "RuleStmt": ACCESS_EXCLUSIVE,
}
# Always refused inside a transaction block ("cannot run inside a transaction block").
NON_TRANSACTIONAL_KINDS = (
    "CreatedbStmt",
    "DropdbStmt",
    "AlterSystemStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "CreateSubscriptionStmt",  # with its replication slot (the default)
    "DropSubscriptionStmt",  # when it has a slot, which the SQL does not tell
)

ALLOW_RE = re.compile(r"^--\s*switchyard:allow\b(.*)$", re.DOTALL)
COMMENT_TOKENS = ("SQL_COMMENT", "C_COMMENT")


class SQLSyntaxError(SwitchyardError):
    """The file is not valid PostgreSQL; the message names the line."""

    def __init__(self, line: int, msg: str) -> None:
        super().__init__(f"line {line}: {msg}")
        self.line = line
        self.msg = f"a migration does not parse: line {line}: {msg}"


@dataclass
class Statement:
    """One statement of a migration file, classified for the runner, check mode and lint.

    `sql` is the file's text from the statement's first token to its semicolon (excluded): it may end
    with a `--` comment, so statements are executed one by one, or joined with newlines."""

    sql: str
    line: int
    kind: str
    transactional: bool
    lock: str | None
    tables: list[str]
    allowed: dict[str, str] = field(default_factory=dict)
    # every allow comment that applies, valid or not: (line, rule id, reason) - lint reports the bad ones
    allow_comments: list[tuple[int, str, str]] = field(default_factory=list)
    node: Any = field(default=None, repr=False, compare=False)  # the pglast AST, for lint

    def as_dict(self) -> dict:
        return {
            "sql": self.sql,
            "line": self.line,
            "kind": self.kind,
            "transactional": self.transactional,
            "lock": self.lock,
            "tables": list(self.tables),
            "allowed": dict(self.allowed),
        }


def split(text: str) -> list[Statement]:
    """The statements of `text` in order; raises SQLSyntaxError (with the line) on invalid SQL."""
    newlines = [i for i, char in enumerate(text) if char == "\n"]

    def line_of(index):
        return bisect.bisect_left(newlines, index) + 1

    try:
        raw = parse_sql(text)
        tokens = scan(text)
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        raise SQLSyntaxError(line_of(location), str(exc.args[0])) from None
    starts = [token.start for token in tokens]
    statements = []
    for stmt in raw:
        end = stmt.stmt_location + stmt.stmt_len if stmt.stmt_len else len(text)
        first = bisect.bisect_left(starts, stmt.stmt_location)
        while tokens[first].name in COMMENT_TOKENS:
            first += 1
        last = bisect.bisect_left(starts, end) - 1
        # up to the semicolon, comments before it kept; after the last statement, comments are not its own
        while tokens[last].name == "ASCII_59" or (not stmt.stmt_len and tokens[last].name in COMMENT_TOKENS):
            last -= 1
        node = stmt.stmt
        line = line_of(tokens[first].start)
        allows = [
            _allow(line_of(token.start), text[token.start : token.end + 1])
            for token in _comments_for(text, tokens, first, line, line_of)
        ]
        allows = [allow for allow in allows if allow]
        statements.append(
            Statement(
                sql=text[tokens[first].start : tokens[last].end + 1],
                line=line,
                kind=type(node).__name__,
                transactional=transactional(node),
                lock=lock(node),
                tables=tables(node),
                allowed={rule: reason for _line, rule, reason in allows if rule and reason},
                allow_comments=allows,
                node=node,
            )
        )
    return statements


def _comments_for(text, tokens, first, line, line_of):
    """Comments that annotate the statement starting at tokens[first]: the block of whole-line
    comments directly above it (no blank line, no code in between) and comments on its first line."""
    found = []
    following = tokens[first].start
    index = first - 1
    while index >= 0 and tokens[index].name in COMMENT_TOKENS:
        token = tokens[index]
        line_start = text.rfind("\n", 0, token.start) + 1
        gap = text[token.end + 1 : following]
        if text[line_start : token.start].strip() or gap.strip() or gap.count("\n") > 1:
            break
        found.append(token)
        following = token.start
        index -= 1
    found.reverse()
    index = first + 1
    while index < len(tokens) and line_of(tokens[index].start) == line:
        if tokens[index].name in COMMENT_TOKENS:
            found.append(tokens[index])
        index += 1
    return found


def _allow(line, comment):
    """`-- switchyard:allow <rule-id> <reason...>` -> (line, rule id, reason), else None."""
    match = ALLOW_RE.match(comment)
    if not match:
        return None
    words = match.group(1).split(None, 1)
    return (line, words[0] if words else "", words[1].strip() if len(words) > 1 else "")


# Where a statement's leading keywords certainly end: the start of a quoted name, a string or a
# dollar-quoted body, or the statement's end (scanning stops there, so a truncated literal cannot fail it).
KEYWORDS_END_RE = re.compile(r"['\"$;]")
# Statements whose next keywords say what they act on (ALTER TABLE, CREATE UNIQUE INDEX, VACUUM FULL).
OBJECT_VERBS = ("ALTER", "CREATE", "DROP", "REFRESH", "REINDEX", "VACUUM", "CLUSTER", "COMMENT", "SECURITY")


def leading_keywords(text, limit=3):
    """The first SQL keywords of a statement (`SELECT`, `ALTER TABLE`, `CREATE UNIQUE INDEX`), as
    PostgreSQL's own scanner classifies them, stopping at the first token that is not a keyword
    (and after the first one unless it is a verb of OBJECT_VERBS).

    Only words of PostgreSQL's fixed keyword list come out - never a name, a number, a string or a
    comment - so another session's statement can be described without leaking what it carries.
    None when the text does not start with a keyword."""
    if not HAS_PGLAST or not isinstance(text, str):
        return None
    match = KEYWORDS_END_RE.search(text, 0, 2000)
    head = text[: match.start() if match else 2000]
    try:
        tokens = scan(head)
    except ParseError:  # an unterminated /* comment: nothing known
        return None
    words = []
    for token in tokens:
        if token.name in COMMENT_TOKENS:
            continue
        word = head[token.start : token.end + 1]
        if token.kind == "NO_KEYWORD" or not word.isalpha() or len(words) == limit:
            break
        if words and words[0] not in OBJECT_VERBS:  # `SELECT password` says no more than `SELECT`
            break
        words.append(word.upper())
    return " ".join(words) or None


def walk(node):
    """Every pglast node under `node`, itself included, depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from walk(getattr(node, attribute))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)


def qualified(range_var) -> str:
    return ".".join(part for part in (range_var.catalogname, range_var.schemaname, range_var.relname) if part)


def tables(node) -> list[str]:
    """Relations the statement names (in order, once each): RangeVars minus CTE names, and the
    objects of DROP TABLE/INDEX/VIEW... (for DROP INDEX that is the index: the table is not in the SQL)."""
    ctes = {cte.ctename for cte in walk(node) if isinstance(cte, ast.CommonTableExpr)}
    names = [qualified(rv) for rv in walk(node) if isinstance(rv, ast.RangeVar)]
    names = [name for name in names if name not in ctes]
    if isinstance(node, ast.DropStmt) and node.removeType.name in DROPPED_RELATIONS:
        names += [".".join(part.sval for part in obj) for obj in node.objects]
    return list(dict.fromkeys(names))


def _option_on(options, name):
    """Whether a generic option list (VACUUM (FULL), REINDEX (CONCURRENTLY false)...) turns `name` on."""
    for option in options or ():
        if option.defname == name:
            value = option.arg
            if value is None:
                return True
            value = getattr(value, "boolval", getattr(value, "sval", getattr(value, "ival", True)))
            return str(value).lower() not in ("false", "off", "0")
    return False


def transactional(node) -> bool:
    """False for what PostgreSQL refuses inside a transaction block: CREATE/DROP INDEX CONCURRENTLY,
    REINDEX CONCURRENTLY, VACUUM (not ANALYZE), CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER SYSTEM,
    CLUSTER without a table, ALTER TABLE ... DETACH PARTITION CONCURRENTLY, CREATE/DROP SUBSCRIPTION,
    DISCARD ALL, and ALTER TYPE ... ADD VALUE (allowed in a transaction since PostgreSQL 12, but the
    new value cannot be used before commit there: kept apart to be safe)."""
    kind = type(node).__name__
    if kind in NON_TRANSACTIONAL_KINDS:
        return False
    if kind in ("IndexStmt", "DropStmt"):
        return not node.concurrent
    if kind == "ReindexStmt":
        return not _option_on(node.params, "concurrently")
    if kind == "VacuumStmt":
        return not node.is_vacuumcmd
    if kind == "ClusterStmt":
        return node.relation is not None
    if kind == "AlterEnumStmt":
        return node.oldVal is not None  # RENAME VALUE has an old value, ADD VALUE does not
    if kind == "DiscardStmt":
        return node.target != enums.DiscardMode.DISCARD_ALL
    if kind == "AlterTableStmt":
        return not any(
            cmd.subtype == enums.AlterTableType.AT_DetachPartition and cmd.def_.concurrent for cmd in node.cmds
        )
    return True


def strongest(*locks):
    """The strongest of the lock modes given (None when none is)."""
    known = [mode for mode in locks if mode]
    return max(known, key=LOCKS.index) if known else None


def _alter_table_cmd_lock(cmd):
    subtype = cmd.subtype.name
    if subtype == "AT_AddConstraint" and cmd.def_.contype == enums.ConstrType.CONSTR_FOREIGN:
        return SHARE_ROW_EXCLUSIVE  # on both tables: it adds triggers to each
    if subtype == "AT_DetachPartition":
        return SHARE_UPDATE_EXCLUSIVE if cmd.def_.concurrent else ACCESS_EXCLUSIVE
    if subtype in ("AT_SetRelOptions", "AT_ResetRelOptions"):
        light = all(
            option.defname in LIGHT_RELOPTIONS or option.defname.startswith(LIGHT_RELOPTION_PREFIXES)
            for option in cmd.def_
        )
        return SHARE_UPDATE_EXCLUSIVE if light else ACCESS_EXCLUSIVE
    return ALTER_TABLE_LOCKS.get(subtype, ACCESS_EXCLUSIVE)


def lock(node) -> str | None:
    """The strongest table-level lock the statement takes on an existing table, as PostgreSQL names it;
    None when it takes none (CREATE TABLE, CREATE FUNCTION, ALTER TYPE...) or it is not modelled."""
    kind = type(node).__name__
    if kind in FIXED_LOCKS:
        return FIXED_LOCKS[kind]
    if kind == "AlterTableStmt":
        return strongest(*(_alter_table_cmd_lock(cmd) for cmd in node.cmds))
    if kind == "IndexStmt":
        return SHARE_UPDATE_EXCLUSIVE if node.concurrent else "SHARE"
    if kind == "ReindexStmt":  # SHARE on the table, ACCESS EXCLUSIVE on the index being rebuilt
        return SHARE_UPDATE_EXCLUSIVE if _option_on(node.params, "concurrently") else "SHARE"
    if kind == "DropStmt" and node.removeType.name in RELATION_OBJECTS:
        concurrent_index = node.concurrent and node.removeType == enums.ObjectType.OBJECT_INDEX
        return SHARE_UPDATE_EXCLUSIVE if concurrent_index else ACCESS_EXCLUSIVE
    if kind == "RenameStmt" and node.renameType.name in RELATION_OBJECTS:
        # ALTER INDEX ... RENAME takes SHARE UPDATE EXCLUSIVE since PostgreSQL 12
        return SHARE_UPDATE_EXCLUSIVE if node.renameType == enums.ObjectType.OBJECT_INDEX else ACCESS_EXCLUSIVE
    if kind == "CreateStmt":  # the new table is nobody's yet; a partition locks its parent, a FK its target
        if node.partbound is not None:
            return ACCESS_EXCLUSIVE
        foreign = any(
            isinstance(c, ast.Constraint) and c.contype == enums.ConstrType.CONSTR_FOREIGN for c in walk(node)
        )
        return SHARE_ROW_EXCLUSIVE if foreign else None
    if kind == "VacuumStmt":
        return ACCESS_EXCLUSIVE if _option_on(node.options, "full") else SHARE_UPDATE_EXCLUSIVE
    if kind == "LockStmt":
        return LOCKS[node.mode - 1]
    if kind == "RefreshMatViewStmt":
        return "EXCLUSIVE" if node.concurrent else ACCESS_EXCLUSIVE
    if kind == "ViewStmt":
        return ACCESS_EXCLUSIVE if node.replace else None
    if kind == "SelectStmt" and tables(node):
        return "ROW SHARE" if node.lockingClause else "ACCESS SHARE"
    return None
