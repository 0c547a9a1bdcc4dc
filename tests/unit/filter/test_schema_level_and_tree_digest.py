"""The schema_level and tree_digest filters on real directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.schema_level import schema_level
from ansible_collections.switchyard.release.plugins.filter.tree_digest import tree_digest

DEMO = Path(__file__).resolve().parents[3] / "examples" / "app" / "migrations"


def test_schema_level_is_the_target_or_the_highest_version_directory(tmp_path: Path) -> None:
    assert schema_level(str(DEMO)) == 2
    assert schema_level(str(DEMO), "1") == 1 and schema_level(str(DEMO), 7) == 7
    (tmp_path / "0010_later").mkdir()
    (tmp_path / "0011_a_file_not_a_version").write_text("")
    (tmp_path / "notes").mkdir()
    assert schema_level(str(tmp_path)) == 10
    assert schema_level("") == 0


def test_schema_level_refuses_a_target_that_is_not_a_number() -> None:
    with pytest.raises(AnsibleFilterError, match="target must be a number, got 'v2'"):
        schema_level(str(DEMO), "v2")
    with pytest.raises(AnsibleFilterError, match="cannot list the migrations directory"):
        schema_level("/nonexistent/migrations")


def test_tree_digest_changes_with_a_file_its_name_or_its_content(tmp_path: Path) -> None:
    (tmp_path / "0001_a").mkdir()
    (tmp_path / "0001_a" / "expand.sql").write_text("CREATE TABLE a (id int);\n")
    first = tree_digest(str(tmp_path))
    assert first.startswith("sha256:") and tree_digest(str(tmp_path)) == first
    (tmp_path / "0001_a" / "expand.sql").write_text("CREATE TABLE a (id bigint);\n")
    edited = tree_digest(str(tmp_path))
    assert edited != first
    (tmp_path / "0001_a" / "expand.sql").rename(tmp_path / "0001_a" / "contract.sql")
    assert tree_digest(str(tmp_path)) not in (first, edited)


def test_tree_digest_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="is not a directory"):
        tree_digest(str(tmp_path / "missing"))
