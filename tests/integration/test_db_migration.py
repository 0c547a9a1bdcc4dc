"""switchyard.release.db_migration against a real PostgreSQL 15 (the testbed's image)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.modules import COLLECTIONS, four_way, run_module
from support.postgres import Postgres
from support.testbed import REPO_ROOT, Testbed

DEMO_MIGRATIONS = REPO_ROOT / "examples" / "app" / "migrations"


@pytest.fixture(scope="module")
def pg(testbed: Testbed, tmp_path_factory) -> Iterator[Postgres]:
    server = Postgres(testbed, tmp_path_factory.mktemp("pg")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db(pg: Postgres) -> str:
    return pg.create_database()


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the demo app's migrations the test may change."""
    target = tmp_path / "migrations"
    shutil.copytree(DEMO_MIGRATIONS, target)
    return target


def assert_four_way(results: list[dict]) -> None:
    check, apply, check_again, apply_again = results
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert check["changed"] and apply["changed"]
    assert not check_again["changed"] and not apply_again["changed"]
    assert check_again["pending"] == [] and apply_again["applied"] == []


def v1_writes(pg: Postgres, db: str, count: int) -> None:
    pg.query(db, "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, %s) g", (count,))


def test_expand_migrate_contract_of_the_demo_app(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations), release_id="r1")
    results = four_way("db_migration", {**args, "phase": "expand"})
    assert_four_way(results)
    check, apply = results[0], results[1]
    assert [p["version"] for p in check["pending"]] == [1, 2]
    assert check["pending"][1]["statements"][0]["lock"] == "ACCESS EXCLUSIVE"
    assert [a["version"] for a in apply["applied"]] == [1, 2]
    assert pg.query(db, "SELECT to_regclass('items') IS NOT NULL") == [(True,)]

    v1_writes(pg, db, 2500)
    results = four_way("db_migration", {**args, "phase": "migrate", "batch_size": 1000})
    assert_four_way(results)
    assert results[0]["pending"][0]["rows_left"] == 2500
    (stats,) = results[1]["backfill"]
    assert stats["rows_this_run"] == 2500 and stats["batches"] == 3 and stats["rows_per_second"] > 0
    assert pg.query(db, "SELECT count(*) FROM items WHERE display_name IS DISTINCT FROM name") == [(0,)]

    assert_four_way(four_way("db_migration", {**args, "phase": "contract"}))
    columns = pg.query(
        db,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
    )
    assert [c[0] for c in columns] == ["id", "created_at", "display_name"]
    history = pg.query(
        db, "SELECT version, phase, release_id, length(checksum) FROM switchyard_schema_history ORDER BY version, phase"
    )
    assert history == [
        (1, "expand", "r1", 64),
        (2, "contract", "r1", 64),
        (2, "expand", "r1", 64),
        (2, "migrate", "r1", 64),
    ]
    status = run_module("db_migration", {**args, "phase": "status"})
    assert status["status"]["contract"] == {"applied": [2], "pending": [], "changed_files": []}


def test_a_changed_file_is_refused_with_both_checksums(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations), phase="expand")
    assert not run_module("db_migration", args).get("failed")
    expand = migrations / "0002_display_name" / "expand.sql"
    expand.write_text(expand.read_text() + "\n-- edited after it ran\n")
    result = run_module("db_migration", args)
    assert result["failed"] and "changed after its expand phase was applied" in result["msg"]
    assert result["msg"].count("checksum") == 2


def test_two_runners_at_once_apply_each_file_once(pg: Postgres, db: str, migrations: Path) -> None:
    slow = migrations / "0003_slow" / "expand.sql"
    slow.parent.mkdir()
    slow.write_text("-- switchyard:allow ddl-in-wrong-phase the test needs a slow statement\nSELECT pg_sleep(2);\n")
    args = pg.module_args(db, path=str(migrations), phase="expand", lint="off")
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
    procs = []
    for _runner in range(2):
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        handle.write(payload)
        handle.close()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ansible_collections.switchyard.release.plugins.modules.db_migration",
                    handle.name,
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(COLLECTIONS)},
            )
        )
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert not any(r.get("failed") for r in results), results
    applied = sorted(a["version"] for r in results for a in r["applied"])
    assert applied == [1, 2, 3]
    assert max(r["runner_lock_waited_s"] for r in results) >= 1.0
    assert pg.query(db, "SELECT count(*) FROM switchyard_schema_history") == [(3,)]


def test_a_long_transaction_makes_expand_retry_then_fail_naming_it(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations), phase="expand", target=1)
    assert not run_module("db_migration", args).get("failed")
    blocker = pg.connect(db, application_name="long-report")
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN; SELECT count(*) FROM items")  # holds ACCESS SHARE until the end
            started = time.monotonic()
            result = run_module(
                "db_migration",
                {
                    **args,
                    "target": None,
                    "lock_timeout": "100ms",
                    "retry": {"attempts": 3, "base_delay": 0.1, "max_delay": 0.2},
                },
            )
            took = time.monotonic() - started
            cur.execute("ROLLBACK")
    finally:
        blocker.close()
    assert result["failed"] and "lock timeout 3 time(s) in a row" in result["msg"]
    assert any(
        s["application_name"] == "long-report" and s["state"] == "idle in transaction"
        for s in result["blocking_sessions"]
    )
    assert took < 10
    assert pg.query(
        db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'display_name'"
    ) == [(0,)]
    assert pg.query(db, "SELECT version FROM switchyard_schema_history") == [(1,)]


def test_a_killed_backfill_resumes_and_finishes(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations))
    assert not run_module("db_migration", {**args, "phase": "expand"}).get("failed")
    v1_writes(pg, db, 20000)
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(
        {"ANSIBLE_MODULE_ARGS": {**args, "phase": "migrate", "batch_size": 200, "pause_between_batches": 0.02}}, handle
    )
    handle.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ansible_collections.switchyard.release.plugins.modules.db_migration", handle.name],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(COLLECTIONS)},
    )
    deadline = time.monotonic() + 30
    while (
        not pg.query(db, "SELECT to_regclass('switchyard_schema_history_backfill') IS NOT NULL")[0][0]
        or not pg.query(db, "SELECT count(*) FROM switchyard_schema_history_backfill")[0][0]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = pg.query(db, "SELECT count(*) FROM items WHERE display_name IS NULL")[0][0]
    assert 0 < left < 20000, "killed half-way"

    result = run_module("db_migration", {**args, "phase": "migrate"})
    assert not result.get("failed"), result.get("msg")
    (stats,) = result["backfill"]
    assert stats["resumed_from"] is not None and stats["rows_this_run"] == left
    assert stats["rows_done"] == 20000
    assert pg.query(db, "SELECT count(*) FROM items WHERE display_name IS DISTINCT FROM name") == [(0,)]


def test_an_invalid_index_is_rebuilt(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations), phase="expand")
    assert not run_module("db_migration", {**args, "target": 2}).get("failed")
    v1_writes(pg, db, 10)
    pg.query(db, "INSERT INTO items (name) VALUES ('item 1')")  # a duplicate: the unique build fails
    with pytest.raises(Exception, match="could not create unique index"):
        pg.query(db, "CREATE UNIQUE INDEX CONCURRENTLY items_created_idx ON items (name)")
    assert pg.query(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_created_idx'::regclass") == [
        (False,)
    ]
    index = migrations / "0003_created_index" / "expand.sql"
    index.parent.mkdir()
    index.write_text("CREATE INDEX CONCURRENTLY IF NOT EXISTS items_created_idx ON items (created_at);\n")
    result = run_module("db_migration", args)
    assert not result.get("failed"), result.get("msg")
    assert result["rebuilt_indexes"] == ["items_created_idx"]
    assert pg.query(
        db,
        "SELECT indisvalid, pg_get_indexdef(indexrelid) LIKE '%%(created_at)' FROM pg_index"
        " WHERE indexrelid = 'items_created_idx'::regclass",
    ) == [(True, True)]


def test_lint_stops_a_bad_migration_before_anything_runs(pg: Postgres, db: str, migrations: Path) -> None:
    bad = migrations / "0003_bad" / "expand.sql"
    bad.parent.mkdir()
    bad.write_text("CREATE INDEX items_name_idx ON items (name);\n")
    result = run_module("db_migration", pg.module_args(db, path=str(migrations), phase="expand"))
    assert result["failed"] and "nothing was run" in result["msg"]
    assert [f["rule"] for f in result["lint"]] == ["require-concurrent-index"]
    assert result["lint"][0]["line"] == 1 and result["lint"][0]["file"].endswith("0003_bad/expand.sql")
    assert pg.query(db, "SELECT to_regclass('items') IS NULL") == [(True,)]


def test_contract_is_refused_while_old_code_is_connected(pg: Postgres, db: str, migrations: Path) -> None:
    args = pg.module_args(db, path=str(migrations))
    for phase in ("expand", "migrate"):
        assert not run_module("db_migration", {**args, "phase": phase}).get("failed")
    old = pg.connect(db, application_name="demo-blue-v1")
    try:
        result = run_module("db_migration", {**args, "phase": "contract", "require_no_sessions_from": ["demo-%-v1"]})
    finally:
        old.close()
    assert result["failed"] and "demo-blue-v1" in result["msg"]
    assert result["sessions"][0]["application_name"] == "demo-blue-v1"
    done = run_module("db_migration", {**args, "phase": "contract", "require_no_sessions_from": ["demo-%-v1"]})
    assert not done.get("failed") and [a["version"] for a in done["applied"]] == [2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"phase": "sideways"}, "value of phase must be one of: expand, migrate, contract, status"),
        ({"phase": "expand", "lint": "loud"}, "value of lint must be one of: error, warn, off"),
        ({"phase": "expand", "retry": {"attempts": 0}}, "retry="),
        ({"phase": "expand", "path": "/nonexistent"}, "path=/nonexistent is not a directory"),
        ({"phase": "expand", "history_table": "Bad-Name"}, "history_table='Bad-Name'"),
    ],
)
def test_bad_input_is_named(pg: Postgres, db: str, migrations: Path, args: dict, message: str) -> None:
    result = run_module("db_migration", {**pg.module_args(db, path=str(migrations), phase="expand"), **args})
    assert result["failed"] and message in result["msg"], result["msg"]
    assert pg.query(db, "SELECT to_regclass('switchyard_schema_history') IS NULL") == [(True,)]


def test_a_file_that_does_not_parse_is_named_with_its_line(pg: Postgres, db: str, migrations: Path) -> None:
    broken = migrations / "0003_broken" / "expand.sql"
    broken.parent.mkdir()
    broken.write_text("-- a comment\nALTER TABLE items ADD COLUMN note text;\nALTER TABLE items ADD COLUM x text;\n")
    result = run_module("db_migration", pg.module_args(db, path=str(migrations), phase="expand"))
    assert result["failed"] and "0003_broken/expand.sql: does not parse" in result["msg"] and "line 3" in result["msg"]
    assert pg.query(db, "SELECT to_regclass('items') IS NULL") == [(True,)]
