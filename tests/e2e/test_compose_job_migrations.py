"""End to end: the migrations run as the application's own Compose jobs (switchyard_migrations_runner:
compose_job) - the demo image's Alembic, `docker compose -p <app>-<color> run --rm migrate`, told its phase in
SWITCHYARD_MIGRATION_PHASE - through release.yml and contract.yml, on the testbed's Docker, HAProxy and
PostgreSQL.

One application, in order: v1 released by its expand job; check mode plans v2's jobs and runs none; a failing
expand job and a backfill job that outlives its timeout each fail the release with traffic left on v1, the lock
released and the ledger saying which job failed with what rc; the fixed release converges (v2 serves, the
schema is Alembic's); the contract job is refused while the old color's sessions remain, then runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
import requests
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)

ALEMBIC = ["python3", "-m", "alembic", "-c", "/opt/demo-app/alembic/alembic.ini"]
JOBS = {phase: {"service": "migrate", "image_from": "api"} for phase in ("expand", "migrate", "contract")}
JOB_KEYS = {"phase", "project", "service", "image", "variables", "rc", "duration_s", "timed_out", "outcome"}


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("jobs"), kind="job", reports=False)
    released.extra.update(
        {
            "switchyard_migrations_runner": "compose_job",
            "switchyard_migrations_dir": "",
            "switchyard_migrations_jobs": JOBS,
            "switchyard_migrations_job_timeout": 120,
            # The runner does not depend on the canary: one step, no window.
            "switchyard_canary_steps": [100],
            "switchyard_rollback_window": 0,
        }
    )
    try:
        yield released
    finally:
        released.down()


def query(app: ReleasedApp, sql: str, application_name: str = "sytest-jobs") -> list[tuple]:
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", f"{app.app}-data-db-1"
    ).stdout.split()[0]
    password = (app.state / "secrets" / "db_password").read_text().strip()
    with (
        psycopg2.connect(
            host=address, dbname="demo", user="demo", password=password, application_name=application_name
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(sql)
        return cur.fetchall() if cur.description else []


def columns(app: ReleasedApp) -> dict[str, bool]:
    return dict(
        query(
            app,
            "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname <> 'id'",
        )
    )


def step(release: dict, name: str) -> dict:
    return next(s for s in release["steps"] if s["name"] == name)


def leftover_jobs(app: ReleasedApp) -> str:
    return docker(
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.oneoff=True",
        "--filter",
        f"label=com.docker.compose.project={app.app}-green",
    ).stdout.strip()


def assert_back_on_v1(app: ReleasedApp) -> None:
    assert app.answer()["version"] == "v1" and app.answer()["color"] == "blue"
    assert app.weights()["blue"] == 256 and app.weights().get("green", 0) == 0
    assert app.lock() is None, "the lock must be released"
    assert app.ledger()["live"] == "blue"


def test_a_release_runs_the_expand_job_in_the_candidates_project(app) -> None:
    app.play("release.yml", switchyard_version="v1")
    assert app.answer()["version"] == "v1"
    assert columns(app) == {"name": True, "created_at": False}, "Alembic's e0001 made the items table"
    assert query(app, "SELECT version_num FROM alembic_version") == [("e0001",)]
    expand = step(app.last_release(), "expand")
    assert expand["runner"] == "compose_job" and set(expand["job"]) == JOB_KEYS
    job = expand["job"]
    assert (job["phase"], job["project"], job["service"], job["rc"], job["outcome"]) == (
        "expand",
        f"{app.app}-blue",
        "migrate",
        0,
        "done",
    )
    assert job["image"] == app.ledger()["colors"]["blue"]["images"]["api"], "the job ran the verified api digest"
    assert job["variables"] == ["SWITCHYARD_MIGRATION_PHASE", "SWITCHYARD_RELEASE_ID"] and job["duration_s"] > 0
    requests.post(app.url + "/items", json={"name": "written by v1"}, timeout=5).raise_for_status()

    # Check mode: the plan says which jobs would run; none runs, nothing changes.
    checked = app.play("release.yml", "--check", switchyard_version="v2")
    assert (
        "Would run the expand job: docker compose -p " + f"{app.app}-green run --rm --no-deps migrate" in checked.stdout
    )
    assert "Would run the migrate job" in checked.stdout
    assert query(app, "SELECT version_num FROM alembic_version") == [("e0001",)]
    assert app.ledger()["live"] == "blue" and len(app.ledger()["releases"]) == 1 and not app.containers("green")


def test_a_failing_job_fails_the_release_with_its_rc_and_output(app) -> None:
    # Alembic's own failure (its CLI exits 255 on an error): a revision this image does not have.
    jobs = {**JOBS, "expand": {**JOBS["expand"], "command": [*ALEMBIC, "upgrade", "nonexistent@head"]}}
    load = Load(app.url + "/", rate=50, seconds=60).start()
    failed = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_migrations_jobs=jobs)
    load.stop()
    said = failed.stdout[
        failed.stdout.find("TASK [switchyard.release.migrate : Run the job of the phase in its project - expand") :
    ]
    assert "the expand job (service migrate in project " + f"{app.app}-green) exited with rc=255" in said, said[-5000:]
    assert "job migrate exited with 255" in failed.stdout and '"cmd": [' in failed.stdout  # the module's own report
    assert "Can't locate revision identified by 'nonexistent'" in said  # Alembic's output, quoted
    assert_back_on_v1(app)
    assert not [s for s in load.answers if s != 200], "the failed job must not cost a request"
    release = app.last_release()
    assert release["outcome"] in ("failed", "rolled_back") and "rc=255" in str(release)
    job = step(release, "expand")["job"]
    assert (job["rc"], job["outcome"], job["timed_out"]) == (255, "failed", False)
    assert query(app, "SELECT version_num FROM alembic_version") == [("e0001",)]
    password = (app.state / "secrets" / "db_password").read_text().strip()
    assert not [o for o in app.outputs if password in o], "the database password was printed"
    assert password not in (app.state / "ledger.json").read_text()


def test_a_backfill_job_that_outlives_its_timeout_is_stopped(app) -> None:
    hang = ["python3", "-c", "import time; print('backfilling', flush=True); time.sleep(300)"]
    jobs = {**JOBS, "migrate": {**JOBS["migrate"], "command": hang, "timeout": 3}}
    failed = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_migrations_jobs=jobs)
    said = failed.stdout[
        failed.stdout.find("TASK [switchyard.release.migrate : Run the job of the phase in its project - migrate") :
    ]
    assert "the migrate job (service migrate in project " + f"{app.app}-green) timed out after" in said, said[-5000:]
    assert "backfilling" in failed.stdout
    assert_back_on_v1(app)
    assert app.servers()["api_green"]["state"] == "maint", "the deployed candidate stays out of rotation"
    job = step(app.last_release(), "migrate")["job"]
    assert (job["outcome"], job["timed_out"], job["rc"]) == ("timed_out", True, 124) and 3 <= job["duration_s"] < 30
    assert step(app.last_release(), "expand")["job"]["outcome"] == "done"  # e0002 ran before the deploy
    assert leftover_jobs(app) == "", "the timed-out job's container must be removed"


def test_the_fixed_release_converges(app) -> None:
    app.play("release.yml", switchyard_version="v2")
    assert app.answer() == {**app.answer(), "version": "v2", "color": "green"}
    assert app.ledger()["live"] == "green" and app.lock() is None
    release = app.last_release()
    assert release["outcome"] == "promoted"
    for phase in ("expand", "migrate"):
        job = step(release, phase)["job"]
        assert (job["phase"], job["rc"], job["outcome"]) == (phase, 0, "done") and set(job) == JOB_KEYS
    # Alembic's e0002 and m0002: display_name exists and the backfill filled v1's row.
    assert columns(app) == {"name": True, "created_at": False, "display_name": False}
    assert query(app, "SELECT count(*) FROM items WHERE display_name IS NULL") == [(0,)]
    assert query(app, "SELECT version_num FROM alembic_version") == [("m0002",)]


def test_the_contract_job_keeps_the_sessions_guard_then_runs(app) -> None:
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", f"{app.app}-data-db-1"
    ).stdout.split()[0]
    password = (app.state / "secrets" / "db_password").read_text().strip()
    # A session as blue's code opens them (switchyard_db_sessions_from "%-{color}-%").
    session = psycopg2.connect(
        host=address, dbname="demo", user="demo", password=password, application_name=f"{app.app}-blue-api"
    )
    try:
        refused = app.play("contract.yml", ok=False)
    finally:
        session.close()
    assert "contract refused: 1 session(s)" in refused.stdout and "blue was started again" in refused.stdout
    assert "name" in columns(app) and app.lock() is None
    assert not app.ledger()["migrations"]["contracted"], "no contract job ran"

    app.play("contract.yml")
    assert columns(app) == {"created_at": False, "display_name": True}, "Alembic's c0002 dropped name"
    assert query(app, "SELECT version_num FROM alembic_version") == [("c0002",)]
    contract = app.last_release("contract")
    assert contract["outcome"] != "failed" and app.lock() is None
    job = step(contract, "contract")["job"]
    assert (job["project"], job["rc"], job["outcome"]) == (f"{app.app}-green", 0, "done")
    assert app.ledger()["migrations"]["contracted"] == [f"job:migrate@{contract['id']}"]
    assert app.answer()["version"] == "v2" and not app.containers("blue")
