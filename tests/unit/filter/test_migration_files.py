"""The migration_files filter on the demo's migrations and on a directory it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.migration_files import migration_files

DEMO = Path(__file__).resolve().parents[3] / "examples" / "app" / "migrations"


def test_the_expand_and_backfill_files_of_each_version_with_their_text() -> None:
    files = migration_files(str(DEMO))
    assert "0001_create_items/expand.sql" in files and "0002_display_name/expand.sql" in files
    assert not [name for name in files if name.endswith("contract.sql")]  # a release does not run them
    assert files["0001_create_items/expand.sql"] == (DEMO / "0001_create_items" / "expand.sql").read_text()
    assert migration_files("") == {}


def test_a_directory_that_is_not_there_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "0003_x").mkdir()
    (tmp_path / "0003_x" / "backfill.yml").write_text("table: items\n")
    assert migration_files(str(tmp_path)) == {"0003_x/backfill.yml": "table: items\n"}
    with pytest.raises(AnsibleFilterError, match="cannot read the migrations directory /nonexistent"):
        migration_files("/nonexistent")
