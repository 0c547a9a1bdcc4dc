"""switchyard.release.preflight on this machine's real Docker Engine and Compose plugin, a real HAProxy of the
lb role and the testbed's PostgreSQL."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from support.compose import free_port, unique_name
from support.modules import run_module
from support.playbooks import PLAYBOOKS, local_inventory, run_playbook
from support.postgres import Postgres
from support.stack import DEMO_DIR, Stack
from support.testbed import Testbed

pytestmark = pytest.mark.testbed

HOST_CHECKS = ["docker", "compose", "free_space", "memory", "clock"]
TURNED_OFF = "turned off by switchyard_preflight_skip"


def names(result: dict, status: str) -> list[str]:
    return [c["name"] for c in result["checks"] if c["status"] == status]


def by_name(result: dict) -> dict:
    return {c["name"]: c for c in result["checks"]}


def test_the_testbed_host_passes_and_reports_what_it_measured(testbed, tmp_path: Path) -> None:
    result = run_module(
        "preflight", {"controller_time": time.time(), "lb": {"dir": str(tmp_path / "lb")}, "routes": ["api"]}
    )
    assert not result.get("failed"), result
    assert names(result, "pass") == result["passed"] == HOST_CHECKS
    assert result["skipped"] == ["lb", "lb_admin", "lb_config", "database"] and result["changed"] is False
    checks = by_name(result)
    assert checks["lb_admin"]["message"] == "no LB yet (first release)"
    assert checks["database"]["message"] == "no database given"
    facts = result["facts"]
    assert facts["docker_root"] and facts["free_bytes"] > 0 and abs(facts["clock_skew_s"]) < 5
    assert facts["compose_version"].startswith("2.") and facts["mem_available_kb"] > 0
    assert [(r["name"], r["status"]) for r in result["record"]] == [(c["name"], c["status"]) for c in result["checks"]]


@pytest.mark.parametrize(
    ("args", "failed", "words"),
    [
        ({"min_free_gb": 10**7}, "free_space", "min_free_gb=1e+07 needed"),  # more than any disk of this machine
        ({"min_free_percent": 100}, "free_space", "min_free_percent=100 needed"),  # a disk in use is never 100 % free
        ({"min_free_memory_mb": 10**8}, "memory", "min_free_memory_mb=100000000 needed"),  # 100 TB of RAM
        ({"min_compose_version": "99.0"}, "compose", "99.0 or later needed"),
        ({"controller_time": 0}, "clock", "max_clock_skew=5 allowed"),  # a controller at 1970: the clock is far
    ],
)
def test_a_limit_the_host_does_not_meet_fails_naming_the_check(testbed, args: dict, failed: str, words: str) -> None:
    result = run_module("preflight", {"controller_time": time.time(), **args}, check=True)
    assert result["failed"] and f"{failed}: " in result["msg"] and words in result["msg"], result["msg"]
    assert names(result, "fail") == [failed]
    record = {r["name"]: r for r in result["record"]}
    assert record[failed]["status"] == "fail" and words in record[failed]["reason"]


def test_skip_turns_a_failing_check_off_and_says_so(testbed) -> None:
    result = run_module("preflight", {"min_free_memory_mb": 10**8, "skip": ["memory", "clock"]}, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["skipped"][:2] == ["memory", "clock"] and "memory" not in result["passed"]
    record = {r["name"]: r for r in result["record"]}
    assert record["memory"] == {
        "name": "memory",
        "status": "skip",
        "value": None,
        "limit": 10**8,
        "reason": TURNED_OFF,
    }
    assert "mem_available_kb" not in result["facts"]  # turned off: not even measured


def test_an_unknown_check_name_is_refused_with_the_allowed_values(testbed) -> None:
    result = run_module("preflight", {"skip": ["memory", "disk"]})
    assert result["failed"] and "skip" in result["msg"] and "disk" in result["msg"]
    assert "docker, compose, free_space, memory, clock, lb, lb_admin, lb_config, database" in result["msg"]
    assert "checks" not in result  # refused before anything was measured


def test_an_lb_socket_nobody_listens_on_fails_the_lb_checks(testbed, tmp_path: Path) -> None:
    run = tmp_path / "lb" / "run"
    run.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(run / "admin.sock"))  # the file exists, nothing accepts: what a dead HAProxy leaves
    dead.close()
    result = run_module("preflight", {"lb": {"dir": str(tmp_path / "lb")}, "routes": ["api"]})
    assert result["failed"] and "lb: the LB does not answer" in result["msg"], result["msg"]
    assert "lb_admin: the LB's control socket does not answer" in result["msg"]
    # No container given: the configuration cannot be checked where the LB runs.
    assert "lb_config: the LB's configuration cannot be checked: lb.container is needed" in result["msg"]


# -- a real HAProxy of the lb role ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lb(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    """The lb role's HAProxy alone (no colors: its servers are DOWN, its sockets and configuration are real)."""
    built = Stack(testbed, tmp_path_factory.mktemp("preflight-lb"), unique_name("pre"))
    try:
        built.lb_role()
        yield built
    finally:
        built.down()


def lb_args(stack: Stack, directory: str | None = None, **extra) -> dict:
    return {"lb": {"dir": directory or str(stack.lb_dir), "container": stack.lb_container}, "routes": ["api"], **extra}


def test_a_running_lb_answers_at_admin_level_with_a_valid_configuration(lb: Stack) -> None:
    result = run_module("preflight", lb_args(lb), check=True)
    assert not result.get("failed"), result.get("msg")
    checks = by_name(result)
    assert [checks[n]["status"] for n in ("lb", "lb_admin", "lb_config")] == ["pass"] * 3
    assert checks["lb_admin"]["value"] == "admin" and checks["lb_config"]["value"] == "valid"
    assert set(result["lb_servers"]["api"]) == {"blue", "green"}


def test_a_control_socket_below_admin_level_fails_lb_admin(lb: Stack, tmp_path: Path) -> None:
    # The lb role's read-only status socket (level user) where the admin socket is expected.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "admin.sock").symlink_to(lb.lb_dir / "run" / "status.sock")
    result = run_module("preflight", lb_args(lb, str(tmp_path), skip=["lb"]))
    assert result["failed"] and "lb_admin: " in result["msg"], result["msg"]
    assert "answers at level user, admin needed" in result["msg"]
    checks = by_name(result)
    assert checks["lb_admin"]["value"] == "user" and checks["lb_admin"]["limit"] == "admin"
    assert names(result, "fail") == ["lb_admin"]  # the configuration is still valid
    with_skip = run_module("preflight", lb_args(lb, str(tmp_path), skip=["lb", "lb_admin"]))
    assert not with_skip.get("failed") and by_name(with_skip)["lb_admin"]["message"] == TURNED_OFF


def test_a_configuration_made_invalid_in_place_fails_lb_config(lb: Stack) -> None:
    config = Path(lb.config)
    original = config.read_bytes()
    try:
        # After HAProxy started: it keeps running, but would not reload with this file.
        config.write_bytes(original + b"\nbackend be_broken\n    balance no-such-algorithm\n")
        result = run_module("preflight", lb_args(lb), check=True)
        assert result["failed"] and "lb_config: " in result["msg"], result["msg"]
        line = len(original.decode().splitlines()) + 3
        assert "is not valid" in result["msg"] and f"haproxy.cfg:{line}] : balance only supports" in result["msg"]
        assert names(result, "fail") == ["lb_config"]  # HAProxy still runs and answers at admin level
    finally:
        config.write_bytes(original)
    assert not run_module("preflight", lb_args(lb), check=True).get("failed")


# -- the testbed's PostgreSQL ------------------------------------------------------------------------------------
MIGRATIONS = DEMO_DIR / "migrations"


def migration_files() -> dict[str, str]:
    """The demo's migrations as the preflight role passes them: NNNN_name/<file> -> text."""
    return {
        f"{path.parent.name}/{path.name}": path.read_text()
        for path in sorted(MIGRATIONS.glob("*/*"))
        if path.name in ("expand.sql", "backfill.yml", "contract.sql")
    }


@pytest.fixture(scope="module")
def items_db(pg: Postgres) -> str:
    """A database at version 1 of the demo (0001 applied by db_migration): 0002 is pending, on items."""
    database = pg.create_database()
    applied = run_module("db_migration", pg.module_args(database, path=str(MIGRATIONS), phase="expand", target=1))
    assert not applied.get("failed"), applied.get("msg")
    pg.query(database, "CREATE TABLE audit (id int)")
    return database


def held_open(pg: Postgres, database: str, sql: str):
    """Another session's transaction, left open after sql (the caller closes the connection)."""
    conn = pg.connect(database, application_name="sytest-holder")
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(sql)
    return conn


def test_the_database_passes_with_old_transactions_only_on_other_tables(pg: Postgres, items_db: str) -> None:
    holder = held_open(pg, items_db, "LOCK TABLE audit IN ACCESS SHARE MODE")  # no pending migration touches it
    try:
        time.sleep(1.2)
        args = pg.module_args(items_db, migrations=migration_files(), max_transaction_age=1)
        result = run_module("preflight", {**args, "skip": HOST_CHECKS}, check=True)
    finally:
        holder.close()
    assert not result.get("failed"), result.get("msg")
    database = by_name(result)["database"]
    assert database["status"] == "pass" and database["limit"] == 1
    assert database["value"]["tables"] == ["items"] and database["value"]["in_recovery"] is False
    assert "on the tables of the pending migrations: items" in database["message"]


def test_an_old_transaction_on_a_table_a_pending_migration_touches_fails_naming_it(pg: Postgres, items_db: str) -> None:
    holder = held_open(pg, items_db, "LOCK TABLE items IN ACCESS SHARE MODE")  # 0002 ALTERs items
    try:
        time.sleep(1.2)
        args = {**pg.module_args(items_db, migrations=migration_files(), max_transaction_age=1), "skip": HOST_CHECKS}
        result = run_module("preflight", args, check=True)
        skipped = run_module("preflight", {**args, "skip": [*HOST_CHECKS, "database"]}, check=True)
        patient = run_module("preflight", {**args, "max_transaction_age": 600}, check=True)
    finally:
        holder.close()
    assert result["failed"] and "database: " in result["msg"], result["msg"]
    assert "older than max_transaction_age=1 s" in result["msg"] and "holds a lock on items" in result["msg"]
    assert "application sytest-holder" in result["msg"]
    session = by_name(result)["database"]["value"]["long_transactions"][0]
    assert session["tables"] == ["items"] and session["transaction_age_s"] >= 1 and session["statement"] == "LOCK"
    assert not skipped.get("failed") and by_name(skipped)["database"]["message"] == TURNED_OFF
    assert not patient.get("failed"), patient.get("msg")


def login_role(pg: Postgres, database: str, tmp_path: Path, name: str, *grants: str) -> tuple[str, Path]:
    """A non-superuser that can log in (CREATE ROLE ... LOGIN), its password in a file, with grants in database."""
    role = unique_name(name).replace("-", "_")
    password = secrets.token_urlsafe(12)
    pg.query("postgres", f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
    for grant in grants:
        pg.query(database, grant.format(role=role))
    password_file = tmp_path / f"{role}.pw"
    password_file.write_text(password + "\n")
    return role, password_file


def test_sessions_of_other_roles_whose_age_is_hidden_pass_with_a_warning_naming_them(
    pg: Postgres, items_db: str, tmp_path: Path
) -> None:
    """Without pg_read_all_stats, another role's xact_start is NULL: its lock on items is reported, not dropped."""
    app, app_password = login_role(pg, items_db, tmp_path, "app", "GRANT SELECT ON items TO {role}")
    checker, checker_password = login_role(
        pg, items_db, tmp_path, "checker", "GRANT SELECT ON switchyard_schema_history TO {role}"
    )
    holder = psycopg2.connect(
        host="127.0.0.1", port=pg.port, dbname=items_db, user=app, password=app_password.read_text().strip()
    )
    args = {
        **pg.module_args(items_db, migrations=migration_files(), max_transaction_age=0),
        "user": checker,
        "password_file": str(checker_password),
        "skip": HOST_CHECKS,
    }
    try:
        with holder.cursor() as cur:  # a transaction left open: 0002 ALTERs items
            cur.execute("LOCK TABLE items IN ACCESS SHARE MODE; SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        result = run_module("preflight", args, check=True)
        pg.query("postgres", f"GRANT pg_read_all_stats TO {checker}")
        seen = run_module("preflight", args, check=True)
    finally:
        holder.close()
    assert not result.get("failed"), result.get("msg")
    database = by_name(result)["database"]
    warning = (
        f"1 session(s) of other roles hold or wait for locks on items (pid {pid} of role {app}); "
        f"their transaction age is not visible to {checker}: grant pg_read_all_stats"
    )
    assert database["status"] == "pass" and database["value"]["warnings"] == [warning], database
    # Also a module warning ([WARNING] on the CLI and in AWX), not only inside the value.
    warned = [w.get("event", {}).get("msg", "") if isinstance(w, dict) else w for w in result.get("warnings", [])]
    assert any("other roles hold or wait for locks on items" in w for w in warned), result.get("warnings")
    assert database["message"].endswith("; warning: " + warning) and "no transaction it can see" in database["message"]
    assert database["value"]["unseen_sessions"] == [
        {"pid": pid, "user": app, "application_name": "", "tables": ["items"], "granted": True}
    ]
    # Granted pg_read_all_stats, the checker sees the transaction's age: older than 0 s, it fails.
    assert seen["failed"] and f"pid {pid} (application -, idle in transaction" in seen["msg"], seen["msg"]
    assert by_name(seen)["database"]["value"]["warnings"] == []


def test_a_database_that_does_not_answer_fails_the_database_check(pg: Postgres, tmp_path: Path) -> None:
    args = {**pg.module_args("postgres"), "port": free_port(), "connect_timeout": 3, "skip": HOST_CHECKS}
    result = run_module("preflight", args)
    assert result["failed"] and "database: cannot connect to PostgreSQL" in result["msg"], result["msg"]
    secret = Path(args["password_file"]).read_text().strip()
    assert secret not in json.dumps(result)


# -- the role -------------------------------------------------------------------------------------------------
def inventory_allowing_skip(directory: Path) -> Path:
    """The local inventory, allowing switchyard_preflight_skip as an extra var (the guard refuses it otherwise)."""
    inventory = local_inventory(directory)
    with inventory.open("a") as handle:
        handle.write("  vars:\n    switchyard_extra_vars_allowed: [switchyard_preflight_skip]\n")
    return inventory


def test_the_role_on_a_first_release_skips_what_does_not_exist_yet(testbed: Testbed, tmp_path: Path) -> None:
    """No LB and no <app>-data yet: the LB and database checks say so; a check turned off says who did it."""
    written = tmp_path / "record.json"
    extra = {
        "switchyard_app": unique_name("pre"),
        "switchyard_state_dir": str(tmp_path / "state"),
        "switchyard_data_compose_files": [str(DEMO_DIR / "compose.data.yaml")],
        "switchyard_db": {
            "host": "",
            "port": 5432,
            "database": "demo",
            "user": "demo",
            "password_file": str(tmp_path / "none"),
        },
        "switchyard_migrations_dir": str(MIGRATIONS),
        "switchyard_preflight_skip": ["clock"],
        "preflight_record_file": str(written),
    }
    inventory = inventory_allowing_skip(tmp_path)
    run_playbook(PLAYBOOKS / "preflight.yml", inventory, extra, "--check")
    record = {r["name"]: r for r in json.loads(written.read_text())}
    assert record["clock"]["reason"] == TURNED_OFF
    assert record["lb_admin"]["reason"] == "no LB yet (first release)"
    assert record["database"]["status"] == "skip" and "first release" in record["database"]["reason"]
    assert all(record[name]["status"] == "pass" for name in ("docker", "compose", "free_space", "memory"))
    refused = run_playbook(
        PLAYBOOKS / "preflight.yml", inventory, {**extra, "switchyard_preflight_skip": ["disk"]}, check=False
    )
    assert refused.returncode != 0 and "switchyard_preflight_skip" in refused.stdout, refused.stdout[-2000:]
    assert "lb_config" in refused.stdout


def test_the_role_reads_the_migrations_on_the_controller_and_checks_their_tables(
    pg: Postgres, items_db: str, tmp_path: Path
) -> None:
    written = tmp_path / "record.json"
    extra = {
        "switchyard_app": unique_name("pre"),
        "switchyard_state_dir": str(tmp_path / "state"),
        "switchyard_db": {
            "host": "127.0.0.1",
            "port": pg.port,
            "database": items_db,
            "user": "switchyard",
            "password_file": str(pg.password_file),
        },
        "switchyard_migrations_dir": str(MIGRATIONS),
        "switchyard_preflight_skip": HOST_CHECKS,
        "preflight_record_file": str(written),
    }
    run_playbook(PLAYBOOKS / "preflight.yml", inventory_allowing_skip(tmp_path), extra, "--check")
    database = {r["name"]: r for r in json.loads(written.read_text())}["database"]
    assert database["status"] == "pass" and database["value"]["tables"] == ["items"], database


def test_the_role_without_migrations_skips_the_database_and_takes_images_in_skip(
    pg: Postgres, items_db: str, tmp_path: Path
) -> None:
    """A release without migrations does not connect (no psycopg2 needed); images is image_verify's to skip."""
    written = tmp_path / "record.json"
    extra = {
        "switchyard_app": unique_name("pre"),
        "switchyard_state_dir": str(tmp_path / "state"),
        "switchyard_db": {
            "host": "127.0.0.1",
            "port": pg.port,
            "database": items_db,
            "user": "switchyard",
            "password_file": str(pg.password_file),
        },
        "switchyard_migrations_dir": "",
        "switchyard_preflight_skip": [*HOST_CHECKS, "images"],
        "preflight_record_file": str(written),
    }
    run_playbook(PLAYBOOKS / "preflight.yml", inventory_allowing_skip(tmp_path), extra, "--check")
    record = {r["name"]: r for r in json.loads(written.read_text())}
    assert record["database"] == {
        "name": "database",
        "status": "skip",
        "value": None,
        "limit": 60.0,
        "reason": "no migrations in this release",
    }
    assert "images" not in record and record["clock"]["reason"] == TURNED_OFF
