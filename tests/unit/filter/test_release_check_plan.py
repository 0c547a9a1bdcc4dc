"""The release_check_plan filter on a plan made by the real planner and db_migration's pending shape."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.release_check_plan import release_check_plan
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import empty_ledger
from ansible_collections.switchyard.release.plugins.module_utils.release.plan import plan_release

DIGEST = "sha256:" + "c" * 64
TAG = "127.0.0.1:5000/switchyard/demo-app:v2"
PINNED = {"api": "127.0.0.1:5000/switchyard/demo-app@" + DIGEST}


def live_blue() -> dict:
    ledger = empty_ledger("shop")
    ledger["live"] = "blue"
    ledger["colors"] = {"blue": {"version": "v1", "state": "live", "images": {}}}
    return ledger


def test_steps_in_numeric_order_images_as_digests_pending_files_by_name() -> None:
    plan = plan_release(live_blue(), "free", "v2", [10, 25, 50, 100], "r2")
    pending = [
        {"version": "0002", "name": "display_name", "phase": "expand", "file": "/m/0002_display_name/expand.sql"},
        {"version": "0003", "name": "tags", "phase": "expand", "file": "/m/0003_tags/expand.sql"},
    ]
    lines = release_check_plan(plan, {"api": TAG}, PINNED, pending)
    assert lines[0] == (
        "steps: 10 % (blue 230, green 26) -> 25 % (blue 192, green 64) -> 50 % (blue 128, green 128)"
        " -> 100 % (blue 0, green 256)"
    )
    assert lines[1] == f"image api: {TAG} -> {DIGEST}"
    assert lines[2] == "migrations pending: 0002_display_name/expand.sql, 0003_tags/expand.sql"


def test_a_first_release_lists_the_files_of_the_directory_expand_first() -> None:
    plan = plan_release(empty_ledger("shop"), "free", "v1", [10, 50, 100], "r1")
    files = ["0001_items/expand.sql", "0002_name/expand.sql", "0002_name/backfill.yml", "0003_x/expand.sql"]
    lines = release_check_plan(plan, {"api": TAG}, {}, files)
    assert lines[0] == "steps: 100 % (blue 256)"
    assert lines[1] == f"image api: {TAG} -> not resolved"
    assert lines[2] == (
        "migrations pending: 0001_items/expand.sql, 0002_name/expand.sql, 0003_x/expand.sql, 0002_name/backfill.yml"
    )


def test_a_pause_is_said_and_no_migrations_is_none() -> None:
    plan = plan_release(live_blue(), "free", "v2", [10, 25, 50, 100], "r2", stop_after_step=25)
    lines = release_check_plan(plan, {"api": TAG}, PINNED)
    assert lines[:2] == [
        "steps: 10 % (blue 230, green 26) -> 25 % (blue 192, green 64)",
        "pause after the 25 % step for an approval",
    ]
    assert lines[-1] == "migrations pending: none"


def test_bad_input_is_named() -> None:
    with pytest.raises(AnsibleFilterError, match="expected the plan"):
        release_check_plan("plan", {}, {})
