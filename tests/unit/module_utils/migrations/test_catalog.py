"""The migrations directory as db_migration reads it: every version directory, phase files by
listing (not probing), and a path it cannot read named with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.migrations import catalog
from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import CatalogError


def write(path: Path, text: str = "SELECT 1;\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_scan_lists_every_version_directory_with_its_phase_files(tmp_path: Path) -> None:
    write(tmp_path / "0001_items" / "expand.sql")
    write(tmp_path / "0002_names" / "contract.sql")
    (tmp_path / "0003_empty").mkdir()
    write(tmp_path / "notes.md", "not a version")
    (tmp_path / "drafts").mkdir()
    versions = catalog.scan(str(tmp_path))
    assert sorted(versions) == [1, 2, 3]
    assert {v: sorted(d.files) for v, d in versions.items()} == {1: ["expand"], 2: ["contract"], 3: []}
    assert versions[2].label == "0002_names"
    assert [m.version for m in catalog.migrations(versions, "expand")] == [1]
    assert [m.version for m in catalog.migrations(versions, "contract", target=1)] == []
    assert catalog.load(str(tmp_path), "contract")[0].label == "0002_names"


def test_two_directories_of_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a").mkdir()
    (tmp_path / "1_b").mkdir()
    with pytest.raises(CatalogError, match="version 1 appears twice: 0001_a and 1_b"):
        catalog.scan(str(tmp_path))


def test_a_phase_file_that_cannot_be_read_is_named_not_skipped(tmp_path: Path) -> None:
    """A dangling symlink (a file that vanished) would be skipped by isfile: it is an error."""
    expand = tmp_path / "0001_items" / "expand.sql"
    expand.parent.mkdir()
    expand.symlink_to(tmp_path / "nowhere.sql")
    with pytest.raises(CatalogError) as error:
        catalog.load(str(tmp_path), "expand")
    assert error.value.msg.startswith(f"{expand}: cannot read it (No such file or directory); nothing was run.")
    assert "readable by the user that runs db_migration" in error.value.msg
    assert error.value.details["path"] == str(expand)


def test_a_phase_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    expand = tmp_path / "0001_items" / "expand.sql"
    expand.parent.mkdir()
    expand.write_bytes(b"SELECT '\xe9';\n")
    with pytest.raises(CatalogError, match=r"expand.sql: not UTF-8 text \(byte 8\)"):
        catalog.load(str(tmp_path), "expand")


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="is not a directory"):
        catalog.scan(str(tmp_path / "gone"))
