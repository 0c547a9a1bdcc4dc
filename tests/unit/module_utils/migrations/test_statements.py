"""The SQL layer of db_migration: splitting with PostgreSQL's parser, classification, allow comments, lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.migrations.lint import RULES, Finding, lint
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import (
    SQLSyntaxError,
    Statement,
    split,
)

DEMO = Path(__file__).resolve().parents[4] / "examples" / "app" / "migrations"


def one(sql: str) -> Statement:
    statements = split(sql)
    assert len(statements) == 1, statements
    return statements[0]


def rules(sql: str, phase: str = "expand") -> list[str]:
    return [finding.rule for finding in lint(split(sql), phase, "m.sql")]


# --- splitting ----------------------------------------------------------------------------------


def test_semicolons_in_strings_dollar_quotes_and_comments_do_not_split() -> None:
    text = """-- a comment; with a semicolon
INSERT INTO t (a) VALUES ('x;y'), (E'it''s; \\n');
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.a := 'q;'; -- inside ; the body
  RETURN NEW;
END;
$body$;
/* block ; comment */ SELECT $$;$$, "we;ird" FROM t;
"""
    statements = split(text)
    assert [s.kind for s in statements] == ["InsertStmt", "CreateFunctionStmt", "SelectStmt"]
    assert [s.line for s in statements] == [2, 3, 9]
    assert statements[0].sql == "INSERT INTO t (a) VALUES ('x;y'), (E'it''s; \\n')"
    assert statements[1].sql.startswith("CREATE FUNCTION f()") and statements[1].sql.endswith("$body$")
    assert "-- inside ; the body" in statements[1].sql
    assert statements[2].sql == 'SELECT $$;$$, "we;ird" FROM t'


def test_comments_inside_a_statement_are_kept_and_the_trailing_semicolon_dropped() -> None:
    statement = one("ALTER TABLE t\n  -- why\n  ADD COLUMN a int /* later */;  -- after\n")
    assert statement.sql == "ALTER TABLE t\n  -- why\n  ADD COLUMN a int /* later */"


def test_comments_after_the_last_statement_are_not_part_of_it() -> None:
    assert [s.sql for s in split("SELECT 1 -- one\n;\nSELECT 2 -- two\n-- end of file\n")] == [
        "SELECT 1 -- one",
        "SELECT 2",
    ]


def test_multibyte_text_before_a_statement_keeps_lines_and_text_exact() -> None:
    text = "-- Ünïcödé ✓ 名前 🚀\nSELECT 'Grüße ✓';\n\n/* ß */ UPDATE t SET a = '名前'\n WHERE b = 1;\nSELECT 3"
    statements = split(text)
    assert [(s.line, s.sql) for s in statements] == [
        (2, "SELECT 'Grüße ✓'"),
        (4, "UPDATE t SET a = '名前'\n WHERE b = 1"),
        (6, "SELECT 3"),
    ]


def test_empty_and_comment_only_files_have_no_statements() -> None:
    assert split("") == []
    assert split("-- nothing\n/* here */\n;;\n") == []


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(SQLSyntaxError, match=r"^line 3: syntax error at or near \"TABEL\"") as caught:
        split("-- é\nSELECT 1;\nCREATE TABEL t (a int);\n")
    assert caught.value.line == 3


def test_as_dict_is_plain_data_for_the_module_output() -> None:
    statement = one("-- switchyard:allow column-type-change catalog only\nALTER TABLE s.t ALTER COLUMN a TYPE text")
    assert statement.as_dict() == {
        "sql": "ALTER TABLE s.t ALTER COLUMN a TYPE text",
        "line": 2,
        "kind": "AlterTableStmt",
        "transactional": True,
        "lock": "ACCESS EXCLUSIVE",
        "tables": ["s.t"],
        "allowed": {"column-type-change": "catalog only"},
    }


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("ALTER TABLE s.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)", ["s.t", "u"]),
        ("WITH c AS (SELECT id FROM a) UPDATE b SET x = 1 FROM c WHERE b.id = c.id", ["b", "a"]),
        ("DROP TABLE a, s.b", ["a", "s.b"]),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", []),
    ],
)
def test_tables(sql: str, tables: list[str]) -> None:
    assert one(sql).tables == tables


# --- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "transactional"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", False),
        ("CREATE INDEX i ON t (a)", True),
        ("DROP INDEX CONCURRENTLY i", False),
        ("REINDEX INDEX CONCURRENTLY i", False),
        ("REINDEX (CONCURRENTLY false) TABLE t", True),
        ("VACUUM t", False),
        ("VACUUM (ANALYZE) t", False),
        ("ANALYZE t", True),
        ("CREATE DATABASE d", False),
        ("ALTER SYSTEM SET work_mem = '64MB'", False),
        ("ALTER TYPE mood ADD VALUE 'meh'", False),
        ("ALTER TYPE mood RENAME VALUE 'meh' TO 'ok'", True),
        ("CLUSTER", False),
        ("CLUSTER t USING i", True),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", False),
        ("ALTER TABLE t ADD COLUMN a int", True),
        ("UPDATE t SET a = 1", True),
    ],
)
def test_transactional(sql: str, transactional: bool) -> None:
    assert one(sql).transactional is transactional


@pytest.mark.parametrize(
    ("sql", "lock"),
    [
        ("ALTER TABLE t ADD COLUMN a int", "ACCESS EXCLUSIVE"),
        ("CREATE INDEX i ON t (a)", "SHARE"),
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "SHARE UPDATE EXCLUSIVE"),
        ("DROP INDEX i", "ACCESS EXCLUSIVE"),
        ("DROP INDEX CONCURRENTLY i", "SHARE UPDATE EXCLUSIVE"),
        ("ALTER TABLE t VALIDATE CONSTRAINT c", "SHARE UPDATE EXCLUSIVE"),
        ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID", "SHARE ROW EXCLUSIVE"),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID", "ACCESS EXCLUSIVE"),
        ("ALTER TABLE t VALIDATE CONSTRAINT c, ALTER COLUMN a SET NOT NULL", "ACCESS EXCLUSIVE"),
        ("ALTER TABLE t SET (fillfactor = 70, autovacuum_enabled = off)", "SHARE UPDATE EXCLUSIVE"),
        ("ALTER TABLE t SET (user_catalog_table = true)", "ACCESS EXCLUSIVE"),
        ("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", "SHARE UPDATE EXCLUSIVE"),
        ("ALTER TABLE t DISABLE TRIGGER trg", "SHARE ROW EXCLUSIVE"),
        ("ALTER TABLE t RENAME COLUMN a TO b", "ACCESS EXCLUSIVE"),
        ("ALTER INDEX i RENAME TO j", "SHARE UPDATE EXCLUSIVE"),
        ("CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", "SHARE ROW EXCLUSIVE"),
        ("UPDATE t SET a = 1", "ROW EXCLUSIVE"),
        ("INSERT INTO t VALUES (1)", "ROW EXCLUSIVE"),
        ("DELETE FROM t", "ROW EXCLUSIVE"),
        ("SELECT * FROM t", "ACCESS SHARE"),
        ("SELECT * FROM t FOR UPDATE", "ROW SHARE"),
        ("SELECT 1", None),
        ("TRUNCATE t", "ACCESS EXCLUSIVE"),
        ("VACUUM t", "SHARE UPDATE EXCLUSIVE"),
        ("VACUUM FULL t", "ACCESS EXCLUSIVE"),
        ("LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE", "SHARE ROW EXCLUSIVE"),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY m", "EXCLUSIVE"),
        ("CREATE TABLE n (id bigint PRIMARY KEY)", None),
        ("CREATE TABLE n (id bigint REFERENCES t (id))", "SHARE ROW EXCLUSIVE"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", None),
    ],
)
def test_lock(sql: str, lock: str | None) -> None:
    assert one(sql).lock == lock


# --- allow comments -----------------------------------------------------------------------------


def test_allow_comments_directly_above_or_on_the_first_line_apply() -> None:
    text = """-- switchyard:allow column-type-change varchar(20) -> text is catalog only
-- an ordinary comment in between
ALTER TABLE t ALTER COLUMN a TYPE text;
CREATE INDEX i ON t (a); -- switchyard:allow require-concurrent-index t has 10 rows
-- switchyard:allow column-type-change a blank line separates this from the statement

ALTER TABLE t ALTER COLUMN b TYPE text;
"""
    first, second, third = split(text)
    assert first.allowed == {"column-type-change": "varchar(20) -> text is catalog only"}
    assert second.allowed == {"require-concurrent-index": "t has 10 rows"}
    assert third.allowed == {}
    assert rules(text) == ["column-type-change"]


def test_a_trailing_allow_comment_does_not_apply_to_the_next_statement() -> None:
    text = "SELECT 1; -- switchyard:allow column-type-change reason\nALTER TABLE t ALTER COLUMN a TYPE text"
    assert split(text)[1].allowed == {}


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("-- switchyard:allow column-type-change", "gives no reason"),
        ("-- switchyard:allow no-such-rule because", "names 'no-such-rule', which is not a rule"),
        ("-- switchyard:allow", "names no rule"),
    ],
)
def test_bad_allow_comments_are_findings_and_allow_nothing(comment: str, message: str) -> None:
    findings = lint(split(f"SELECT 1;\n{comment}\nALTER TABLE t ALTER COLUMN a TYPE text;"), "expand", "m.sql")
    assert [(f.rule, f.line) for f in findings] == [("column-type-change", 3), ("allow-without-reason", 2)]
    assert message in findings[1].message


# --- lint rules: each fires on a bad example and not on its safe recipe ----------------------------

CASES = [
    ("require-concurrent-index", "expand", "CREATE INDEX i ON t (a)", "CREATE INDEX CONCURRENTLY i ON t (a)"),
    ("require-concurrent-index", "expand", "CREATE INDEX i ON t (a)", "CREATE TABLE t (a int);\nCREATE INDEX ON t (a)"),
    ("require-concurrent-index", "contract", "DROP INDEX i", "DROP INDEX CONCURRENTLY IF EXISTS i"),
    (
        "add-column-not-null-without-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a text NOT NULL",
        "ALTER TABLE t ADD COLUMN a text NOT NULL DEFAULT ''",
    ),
    (
        "volatile-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a float DEFAULT random()",
        "ALTER TABLE t ADD COLUMN a int",
    ),
    (
        "volatile-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE t ADD COLUMN a uuid;\nALTER TABLE t ALTER COLUMN a SET DEFAULT gen_random_uuid()",
    ),
    (
        "volatile-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a timestamptz DEFAULT clock_timestamp()",
        "ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now(), ADD COLUMN b timestamptz DEFAULT CURRENT_TIMESTAMP",
    ),
    (
        "volatile-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a bigserial",
        "ALTER TABLE t ADD COLUMN a bigint DEFAULT 0",
    ),
    (
        "volatile-default",
        "expand",
        "ALTER TABLE t ADD COLUMN a bigint DEFAULT nextval('s')",
        "CREATE TABLE t (a bigserial, b bigint DEFAULT nextval('s'))",
    ),
    (
        "constraint-without-not-valid",
        "expand",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c",
    ),
    (
        "constraint-without-not-valid",
        "expand",
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u_id) REFERENCES u (id)",
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u_id) REFERENCES u (id) NOT VALID",
    ),
    (
        "constraint-without-not-valid",
        "expand",
        "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)",
        "CREATE UNIQUE INDEX CONCURRENTLY k_idx ON t (a);\nALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX k_idx",
    ),
    (
        "constraint-without-not-valid",
        "expand",
        "ALTER TABLE t ADD COLUMN u_id bigint REFERENCES u (id)",
        "ALTER TABLE t ADD COLUMN u_id bigint",
    ),
    (
        "column-type-change",
        "expand",
        "ALTER TABLE t ALTER COLUMN a TYPE bigint",
        "ALTER TABLE t ADD COLUMN a_new bigint",
    ),
    ("rename-or-drop-in-expand", "expand", "ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE t ADD COLUMN b text"),
    ("rename-or-drop-in-expand", "expand", "ALTER TABLE t RENAME TO u", "CREATE TABLE u (id bigint)"),
    ("rename-or-drop-in-expand", "expand", "ALTER TABLE t DROP COLUMN a", "ALTER TABLE t ALTER COLUMN a DROP NOT NULL"),
    ("rename-or-drop-in-expand", "expand", "DROP TABLE t", "CREATE TABLE u (id bigint)"),
    ("rename-or-drop-in-expand", "expand", "ALTER TABLE t DROP CONSTRAINT c", "SELECT 1"),
    ("rename-or-drop-in-expand", "contract", None, "ALTER TABLE t DROP COLUMN a;\nDROP TABLE u"),
    ("ddl-in-wrong-phase", "contract", "ALTER TABLE t ADD COLUMN a text", "ALTER TABLE t DROP COLUMN a"),
    ("ddl-in-wrong-phase", "contract", "CREATE TABLE u (id bigint)", "DROP TABLE u"),
    ("ddl-in-wrong-phase", "expand", "UPDATE t SET a = b", "ALTER TABLE t ADD COLUMN a text"),
    ("ddl-in-wrong-phase", "contract", "DELETE FROM t WHERE a IS NULL", "SELECT 1"),
    (
        "ddl-in-wrong-phase",
        "expand",
        "INSERT INTO kinds VALUES ('a')",
        "CREATE TABLE kinds (name text);\nINSERT INTO kinds VALUES ('a')",
    ),
    (
        "set-not-null-without-validated-check",
        "contract",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT c;\n"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
        "ALTER TABLE t DROP CONSTRAINT c",
    ),
    (
        "set-not-null-without-validated-check",
        "contract",
        # a NOT VALID check that was never validated proves nothing
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t ALTER COLUMN a SET NOT NULL",
        "ALTER TABLE t ALTER COLUMN a DROP NOT NULL",
    ),
]


@pytest.mark.parametrize(("rule", "phase", "bad", "safe"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_on_the_bad_example_not_on_the_safe_recipe(
    rule: str, phase: str, bad: str | None, safe: str
) -> None:
    if bad is not None:  # None: only checks that the safe form passes in this phase
        assert rule in rules(bad, phase)
    assert rule not in rules(safe, phase)


def test_every_rule_has_a_case() -> None:
    assert {case[0] for case in CASES} | {"allow-without-reason"} == set(RULES)


def test_an_allow_comment_with_a_reason_silences_only_its_rule() -> None:
    text = (
        "-- switchyard:allow require-concurrent-index t is a 10-row lookup table\n"
        "CREATE INDEX i ON t (a);\n"
        "ALTER TABLE t ALTER COLUMN a TYPE text;\n"
    )
    assert rules(text) == ["column-type-change"]


def test_a_finding_names_file_line_rule_message_and_recipe() -> None:
    (finding,) = lint(split("SELECT 1;\n\nCREATE INDEX i ON items (a);"), "expand", Path("m/0003/expand.sql"))
    assert isinstance(finding, Finding)
    assert finding.as_dict() == {
        "file": "m/0003/expand.sql",
        "line": 3,
        "rule": "require-concurrent-index",
        "message": "CREATE INDEX i on items without CONCURRENTLY blocks writes to it",
        "recipe": RULES["require-concurrent-index"],
    }
    assert str(finding).startswith("m/0003/expand.sql:3: [require-concurrent-index] CREATE INDEX i on items")


def test_an_unknown_phase_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown phase 'backfill'"):
        lint([], "backfill", "m.sql")


# --- the demo application ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["0001_create_items/expand.sql", "0002_display_name/expand.sql", "0002_display_name/contract.sql"]
)
def test_demo_migrations_lint_clean(path: str) -> None:
    file = DEMO / path
    statements = split(file.read_text(encoding="utf-8"))
    assert statements
    assert lint(statements, file.stem, str(file)) == []


def test_demo_contract_locks_and_lines() -> None:
    text = (DEMO / "0002_display_name" / "contract.sql").read_text(encoding="utf-8")
    statements = split(text)
    assert [s.lock for s in statements] == [
        "ACCESS EXCLUSIVE",  # ADD CONSTRAINT CHECK ... NOT VALID: brief, catalog only
        "SHARE UPDATE EXCLUSIVE",  # VALIDATE CONSTRAINT: the scan, reads and writes go on
        "ACCESS EXCLUSIVE",  # SET NOT NULL
        "ACCESS EXCLUSIVE",  # DROP CONSTRAINT
        "ACCESS EXCLUSIVE",  # DROP COLUMN
    ]
    lines = text.splitlines()
    assert all(lines[s.line - 1].startswith(s.sql) for s in statements)
    assert all(s.transactional and s.tables == ["items"] for s in statements)
