"""What a backfill.yml may put into the batch's SQL (names, set/where fragments, params), and what
the blockers report may say of another session's statement. The runs against PostgreSQL are in
tests/integration/test_db_migration.py."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.migrations.backfill import (
    check_params,
    check_update,
    name_parts,
    prepare_fragment,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import MigrationError
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import leading_keywords

PATH = "0003_x/backfill.yml"


def fragment(option: str, text: str, params: dict | None = None) -> tuple[str, str, set]:
    prepared = prepare_fragment(text, option, PATH, params or {})
    set_text, where_text = (prepared[1], "true") if option == "set" else ("x = 1", prepared[1])
    assert check_update(set_text, where_text, '"t"', '"id"', PATH) == []
    return prepared


@pytest.mark.parametrize(
    ("option", "text", "why"),
    [
        ("set", "x = 1; DROP TABLE users", "a ';' would end the statement"),
        ("where", "true; DROP TABLE users", "a ';' would end the statement"),
        ("set", "x = 1 -- the rest of the line is gone", "it contains a comment"),
        ("set", "x = 1 /* WHERE ... */", "it contains a comment"),
        ("where", "true /* swallow", "it does not scan as SQL (unterminated /* comment"),
        ("where", "true) OR (true", "a closing bracket without its opening one"),
        ("where", "(true", "an opening bracket without its closing one"),
        ("where", "status = %(old)s", "placeholder(s) old not in params (params has: none)"),
    ],
)
def test_a_hostile_or_broken_fragment_is_refused_naming_the_option(option: str, text: str, why: str) -> None:
    with pytest.raises(MigrationError) as refused:
        fragment(option, text)
    assert refused.value.msg.startswith(f"{PATH}: {option}={text!r} is refused: {why}")
    assert "nothing was run" in refused.value.msg


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("set", "x = 1 FROM other", "set='x = 1 FROM other' is refused: it adds FROM, WHERE or RETURNING"),
        ("set", "x = 1 RETURNING *", "it adds FROM, WHERE or RETURNING"),
        ("set", "x = 1 WHERE true OR", "set does not parse in `UPDATE"),
        ("where", "x IN (WITH d AS (DELETE FROM u RETURNING id) SELECT id FROM d)", "where is refused: it holds"),
        ("set", "x = (WITH d AS (UPDATE u SET a = 1 RETURNING a) SELECT a FROM d)", "set is refused: it holds"),
    ],
)
def test_a_fragment_that_changes_the_update_is_refused(option: str, text: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        fragment(option, text)


def test_a_literal_percent_is_doubled_for_psycopg2_and_placeholders_are_kept() -> None:
    assert fragment("where", "name LIKE 'a%'") == ("name LIKE 'a%%'", "name LIKE 'a%'", set())
    assert fragment("where", "id % 2 = 0")[0] == "id %% 2 = 0"
    # %(name)s inside a string or a quoted name is text, not a placeholder
    sql, parsed, names = fragment("where", "status=%(old)s AND \"a%(b)s\" LIKE 'x%(y)s'", {"old": "new"})
    assert sql == "status=%(old)s AND \"a%%(b)s\" LIKE 'x%%(y)s'" and names == {"old"}
    assert parsed == "status=$1 AND \"a%(b)s\" LIKE 'x%(y)s'"


@pytest.mark.parametrize(
    ("value", "qualified", "parts"),
    [("Order", True, ["Order"]), ("public.Order", True, ["public", "Order"]), ("OrderId", False, ["OrderId"])],
)
def test_names_are_taken_as_spelled(value: str, qualified: bool, parts: list[str]) -> None:
    assert name_parts(value, "table" if qualified else "key", PATH, qualified) == parts


@pytest.mark.parametrize("value", ["", "a.b.c", 'x"y', "a%b", "a\nb", "x" * 64, 5, "public.Order"])
def test_a_name_quoting_cannot_carry_is_refused(value: object) -> None:
    with pytest.raises(
        MigrationError,
        match=r"key=.* is not a valid key: give a column name \(no table before it, no dot\), as the catalog",
    ):
        name_parts(value, "key", PATH)


def test_params_are_named_values() -> None:
    assert check_params({"old": "a%", "ids": [1, 2], "on": None}, PATH) == {"old": "a%", "ids": [1, 2], "on": None}
    assert check_params(None, PATH) == {}
    with pytest.raises(MigrationError, match="params key '_last' is not a parameter name"):
        check_params({"_last": 1}, PATH)
    with pytest.raises(MigrationError, match="params.x must be a string, number"):
        check_params({"x": {"nested": 1}}, PATH)
    with pytest.raises(MigrationError, match="params must be a mapping"):
        check_params(["x"], PATH)


@pytest.mark.parametrize(
    ("query", "keywords"),
    [
        ("SELECT pg_sleep(10) WHERE 'S3cr3t-xyz' <> ''", "SELECT"),
        ("/* token S3cr3t-xyz */ alter table items add column x text", "ALTER TABLE"),
        ("CREATE UNIQUE INDEX CONCURRENTLY i ON t (x)", "CREATE UNIQUE INDEX"),
        ('UPDATE "Order" SET "Status" = \'S3cr3t-xyz\'', "UPDATE"),
        ("SELECT password FROM users", "SELECT"),
        ("-- S3cr3t-xyz\nDELETE FROM t WHERE x = 'a", "DELETE"),  # truncated by track_activity_query_size
        ("S3cr3t-xyz", None),
        ("", None),
        ("/* unterminated S3cr3t-xyz", None),
        (None, None),
    ],
)
def test_a_blocker_statement_is_described_by_its_first_keywords_only(query: str, keywords: str | None) -> None:
    assert leading_keywords(query) == keywords
