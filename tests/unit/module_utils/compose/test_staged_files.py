"""compose_project's staged files (a recreate lays out the next version beside the color, then the module puts it in
place after the stop): what needs no Docker - the checks before anything changes, and the move itself."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.compose.project import (
    missing_staged,
    put_in_place,
    staged_copy,
    validate_static,
)


def color(tmp_path, staged: dict, live: dict) -> dict:
    """The color's directory and its staging directory beside it, with the files given (name -> text)."""
    for directory, files in (("blue", live), ("blue.staged", staged)):
        (tmp_path / directory).mkdir()
        for name, text in files.items():
            (tmp_path / directory / name).write_text(text)
            (tmp_path / directory / name).chmod(0o600)
    return {
        "project": "shop-blue",
        "files": [str(tmp_path / "blue" / "compose.base.yaml"), str(tmp_path / "blue" / "color.override.yaml")],
        "env_files": [str(tmp_path / "blue" / "color.env")],
        "staged_dir": str(tmp_path / "blue.staged"),
        "stop_first": True,
        "state": "present",
        "run": None,
        "images": {},
        "wait_timeout": 10,
    }


FILES = {"compose.base.yaml": "services: {}\n", "color.override.yaml": "services: {}\n", "color.env": "V=1\n"}


def test_staged_dir_and_stop_first_are_for_present_and_a_file_may_come_only_staged(tmp_path) -> None:
    params = color(tmp_path, staged=FILES, live={k: v for k, v in FILES.items() if k != "color.override.yaml"})
    validate_static(params)  # color.override.yaml is not there yet: the staging brings it
    assert staged_copy(params, params["env_files"][0]) == str(tmp_path / "blue.staged" / "color.env")
    for state in ("stopped", "started", "absent", "restarted"):
        with pytest.raises(InvalidParameters, match=f"staged_dir and stop_first are for state=present.*{state}"):
            validate_static({**params, "state": state})
    with pytest.raises(InvalidParameters, match="files/env_files: .*color.override.yaml does not exist"):
        validate_static({**params, "staged_dir": None})


def test_a_staged_file_missing_is_refused_naming_it_before_anything_moves(tmp_path) -> None:
    params = color(tmp_path, staged={"compose.base.yaml": "new\n"}, live=FILES)
    with pytest.raises(InvalidParameters, match=r"blue.staged/color.override.yaml, .*blue.staged/color.env missing"):
        missing_staged(params)
    assert (tmp_path / "blue" / "compose.base.yaml").read_text() == FILES["compose.base.yaml"]
    assert (tmp_path / "blue.staged" / "compose.base.yaml").exists()


def test_each_staged_file_replaces_its_counterpart_whole_and_the_changed_ones_are_said(tmp_path) -> None:
    staged = {**FILES, "color.env": "V=2\n"}
    params = color(tmp_path, staged=staged, live=FILES)
    missing_staged(params)
    live = params["files"] + params["env_files"]
    inodes = {p: os.stat(staged_copy(params, p)).st_ino for p in live}
    changed = put_in_place([(staged_copy(params, p), p) for p in live])
    assert changed == [str(tmp_path / "blue" / "color.env")]  # the same content moved, but not a change
    for path in live:
        # Renamed, not rewritten: the staged inode itself, its mode with it; nothing left in the staging directory.
        assert os.stat(path).st_ino == inodes[path] and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (tmp_path / "blue" / "color.env").read_text() == "V=2\n"
    assert list((tmp_path / "blue.staged").iterdir()) == []
