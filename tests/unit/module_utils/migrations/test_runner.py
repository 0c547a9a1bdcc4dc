"""How the runner groups a file's statements into transactions, records them, and resumes a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import Migration
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import (
    MigrationError,
    PendingFile,
    PhaseRunner,
    applied_prefix,
    describe,
    failure_report,
    file_groups,
    groups_state,
    segments,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import split

NOT_NULL_RECIPE = """
ALTER TABLE orders ADD CONSTRAINT orders_note_nn CHECK (note IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_note_nn;
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_note_nn;
"""


def shape(groups):
    return [(transactional, [s.line for s in group]) for transactional, group in groups]


def test_validate_never_shares_the_transaction_of_the_add_constraint() -> None:
    """In one transaction, the ACCESS EXCLUSIVE lock of ADD CONSTRAINT would last the whole scan."""
    groups = segments(split(NOT_NULL_RECIPE), per_statement=False)
    assert shape(groups) == [(True, [2]), (True, [3]), (True, [4, 5])]


def test_concurrent_statements_run_alone_and_the_rest_together() -> None:
    text = (
        "ALTER TABLE items ADD COLUMN note text;\n"
        "ALTER TABLE items ADD COLUMN tag text;\n"
        "CREATE INDEX CONCURRENTLY items_tag_idx ON items (tag);\n"
        "COMMENT ON COLUMN items.tag IS 'x';\n"
    )
    assert shape(segments(split(text), per_statement=False)) == [(True, [1, 2]), (False, [3]), (True, [4])]
    assert shape(segments(split(text), per_statement=True)) == [(True, [1]), (True, [2]), (False, [3]), (True, [4])]


# --- statement groups: what the history records and a re-run resumes at --------------------------

TAGS = """-- 0003: a table, filled, indexed, then checked
CREATE TABLE tags (id bigint PRIMARY KEY, label text NOT NULL);
INSERT INTO tags (id, label) SELECT id, name FROM items;
CREATE INDEX CONCURRENTLY tags_label_idx ON tags (label);
ALTER TABLE tags ADD CONSTRAINT tags_label_not_empty CHECK (label <> '');
"""


def tags_file(tmp_path: Path, text: str = TAGS) -> Migration:
    path = tmp_path / "0003_tags" / "expand.sql"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return Migration(3, "tags", "expand", str(path))


def test_groups_are_numbered_from_one_with_their_first_line_and_words() -> None:
    groups = file_groups(split(TAGS), TAGS)
    assert [(g.number, g.transactional, g.line, g.words) for g in groups] == [
        (1, True, 2, "CREATE TABLE tags (id bigint"),
        (2, False, 4, "CREATE INDEX CONCURRENTLY tags_label_idx ON"),
        (3, True, 5, "ALTER TABLE tags ADD CONSTRAINT"),
    ]
    assert (
        describe(groups[:2])
        == "1 (line 2, CREATE TABLE tags (id bigint), 2 (line 4, CREATE INDEX CONCURRENTLY tags_label_idx ON)"
    )


def test_a_group_checksum_follows_its_statements_not_the_comments_around_them() -> None:
    before = file_groups(split(TAGS), TAGS)
    commented = "-- a new comment\n" + TAGS.replace("\nINSERT", "\n-- why we copy\nINSERT")
    after = file_groups(split(commented), commented)
    assert [g.checksum for g in after] == [g.checksum for g in before]
    edited = TAGS.replace("label <> ''", "label IS NOT NULL")
    changed = file_groups(split(edited), edited)
    assert [g.checksum == b.checksum for g, b in zip(changed, before, strict=True)] == [True, True, False]


def test_the_per_statement_marker_changes_the_groups() -> None:
    text = "-- switchyard:transaction per-statement\n" + TAGS
    assert [g.line for g in file_groups(split(text), text)] == [3, 4, 5, 6]


def test_applied_prefix_allows_changes_only_after_the_applied_groups(tmp_path: Path) -> None:
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    assert applied_prefix(migration, groups, {}) == 0
    assert applied_prefix(migration, groups, {1: groups[0].checksum, 2: groups[1].checksum}) == 2
    fixed = TAGS.replace("label <> ''", "label IS NOT NULL")
    assert applied_prefix(migration, file_groups(split(fixed), fixed), {1: groups[0].checksum}) == 1


def test_a_changed_applied_group_is_refused_naming_it(tmp_path: Path) -> None:
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    edited = TAGS.replace("SELECT id, name", "SELECT id, upper(name)")
    with pytest.raises(MigrationError) as refused:
        applied_prefix(migration, file_groups(split(edited), edited), {1: groups[0].checksum, 2: groups[1].checksum})
    assert "statement group 1 (line 2, CREATE TABLE tags (id bigint) changed after it was applied" in refused.value.msg
    assert "groups 1-2 of this file ran" in refused.value.msg and groups[0].checksum in refused.value.msg
    assert "restore groups 1-2 of" in refused.value.msg


def test_removed_applied_groups_and_holes_in_the_history_are_refused(tmp_path: Path) -> None:
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    short = file_groups(split(TAGS), TAGS)[:1]
    with pytest.raises(MigrationError, match="group 2 of its expand phase was applied, but the file now has 1 group"):
        applied_prefix(migration, short, {1: groups[0].checksum, 2: groups[1].checksum})
    with pytest.raises(MigrationError, match=r"has statement groups \[1, 3\]"):
        applied_prefix(migration, groups, {1: groups[0].checksum, 3: groups[2].checksum})


PARAMS = {"lint": "error", "lock_timeout": "500ms", "statement_timeout": "", "release_id": None}


def test_plan_of_a_partly_applied_file_lists_and_lints_only_the_groups_left(tmp_path: Path) -> None:
    # The CHECK on a table created in the same file is exempt from lint; so it stays after a resume.
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    progress = {3: {"name": "tags", "groups": {1: groups[0].checksum, 2: groups[1].checksum}}}
    runner = PhaseRunner(None, None, PARAMS, [], check_mode=True)
    (pending,), findings = runner.plan([migration], {}, progress)
    assert pending.done == 2 and [g.number for g in pending.remaining] == [3] and findings == []

    # An applied group's finding (accepted with lint=warn back then) is not reported again.
    bad = "CREATE INDEX items_name_idx ON items (name);\nALTER TABLE items ADD COLUMN note text;\n" + (
        "CREATE INDEX items_note_idx ON items (note);\n"
    )
    migration = tags_file(tmp_path, bad)
    groups = file_groups(split(bad), bad)
    assert [g.line for g in groups] == [1]
    (pending,), findings = runner.plan([migration], {}, {})
    assert [f.line for f in findings] == [1, 3]
    per_statement = "-- switchyard:transaction per-statement\n" + bad
    migration = tags_file(tmp_path, per_statement)
    groups = file_groups(split(per_statement), per_statement)
    progress = {3: {"name": "tags", "groups": {1: groups[0].checksum}}}
    (pending,), findings = runner.plan([migration], {}, progress)
    assert pending.done == 1 and [f.line for f in findings] == [4]


def test_plan_of_a_file_whose_groups_all_ran_records_it_without_running_anything(tmp_path: Path) -> None:
    """The groups after the applied ones were removed from the file: nothing is left but its history row."""
    migration = tags_file(tmp_path, "CREATE TABLE tags (id bigint);\n")
    groups = file_groups(split(migration.text), migration.text)
    runner = PhaseRunner(None, None, PARAMS, [], check_mode=True)
    (pending,), findings = runner.plan([migration], {}, {3: {"name": "tags", "groups": {1: groups[0].checksum}}})
    assert pending.remaining == [] and findings == []


def test_the_failure_report_says_what_ran_what_failed_and_where_a_rerun_resumes(tmp_path: Path) -> None:
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    resumed = PendingFile(migration, split(TAGS), groups, done=1)
    report = failure_report(resumed, groups[1])
    assert report == (
        "statement groups of this file - applied: 1 (line 2, CREATE TABLE tags (id bigint) (group 1 by an earlier "
        "run); failed: 2 (line 4, CREATE INDEX CONCURRENTLY tags_label_idx ON); not run: 3 (line 5, ALTER TABLE tags "
        "ADD CONSTRAINT). Nothing of group 2 was applied; a re-run resumes at group 2: fix the cause (the data, or "
        "the statements of group 2 and later; group 1 must stay as it is) and run again"
    )
    assert [(g["group"], g["state"]) for g in groups_state(resumed, groups[1])] == [
        (1, "applied"),
        (2, "failed"),
        (3, "not run"),
    ]
    first = failure_report(PendingFile(migration, split(TAGS), groups), groups[0])
    assert first.startswith("statement groups of this file - applied: none; failed: 1 (line 2,")


def test_a_concurrent_statement_that_ran_but_was_not_recorded_is_not_called_unapplied(tmp_path: Path) -> None:
    migration = tags_file(tmp_path)
    groups = file_groups(split(TAGS), TAGS)
    report = failure_report(PendingFile(migration, split(TAGS), groups, done=1), groups[1], ran_unrecorded=True)
    assert "Group 2 ran but could not be recorded: a re-run runs it again" in report
    assert "Nothing of group 2" not in report
