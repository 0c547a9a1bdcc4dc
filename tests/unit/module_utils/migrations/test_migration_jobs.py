"""The migration runner's decisions: which runner, whether a release has migrations, a phase's job (service,
command, verified image, timeout, the phase variable) and what the ledger keeps of it - every bad setting
refused naming the variable and what it accepts."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.migration_jobs import FilterModule
from ansible_collections.switchyard.release.plugins.module_utils.migrations.jobs import (
    MigrationJobsError,
    migration_job,
    migration_job_failure,
    migration_job_record,
    migrations_runner,
)

IMAGES = {"api": "reg/app@sha256:" + "a" * 64}
JOBS = {
    "expand": {"service": "migrate", "image_from": "api", "command": ["alembic", "upgrade", "expand@head"]},
    "contract": {"service": "migrate", "image_from": "api", "command": "alembic upgrade contract@head", "timeout": 30},
}


def test_builtin_is_the_default_and_is_enabled_by_a_directory_only() -> None:
    assert migrations_runner("builtin", {}, IMAGES, 600, "") == {"runner": "builtin", "enabled": False, "jobs": {}}
    assert migrations_runner("builtin", JOBS, IMAGES, 600, "/m")["enabled"] is True
    # the builtin runner ignores the jobs (an inventory may keep both, switching runner by one variable)
    assert migrations_runner("builtin", {"nope": 1}, IMAGES, 600, "/m")["jobs"] == {}


def test_compose_job_normalises_each_phase() -> None:
    settings = migrations_runner("compose_job", JOBS, IMAGES, "120", "")
    assert settings["runner"] == "compose_job" and settings["enabled"] is True
    assert settings["jobs"] == {
        "expand": {
            "service": "migrate",
            "command": ["alembic", "upgrade", "expand@head"],
            "image_from": "api",
            "timeout": 120,
        },
        "contract": {
            "service": "migrate",
            "command": "alembic upgrade contract@head",
            "image_from": "api",
            "timeout": 30,
        },
    }


def test_image_from_defaults_to_the_service_and_a_command_to_the_services_own() -> None:
    jobs = migrations_runner("compose_job", {"migrate": {"service": "api"}}, IMAGES)["jobs"]
    assert jobs == {"migrate": {"service": "api", "command": None, "image_from": "api", "timeout": 600}}


@pytest.mark.parametrize(
    ("runner", "jobs", "timeout", "directory", "message"),
    [
        ("alembic", JOBS, 600, "", "switchyard_migrations_runner='alembic': one of builtin, compose_job"),
        ("compose_job", JOBS, 0, "", "switchyard_migrations_job_timeout=0: a positive whole number of seconds"),
        ("compose_job", JOBS, True, "", "switchyard_migrations_job_timeout=True: a positive"),
        ("compose_job", JOBS, "10m", "", "switchyard_migrations_job_timeout='10m': a positive"),
        ("compose_job", JOBS, 600, "/srv/m", "switchyard_migrations_dir ('/srv/m'): set switchyard_migrations_dir"),
        ("compose_job", {}, 600, "", "compose_job needs switchyard_migrations_jobs: a mapping of phase"),
        ("compose_job", ["expand"], 600, "", "compose_job needs switchyard_migrations_jobs"),
        ("compose_job", {"backfill": {"service": "m"}}, 600, "", "unknown phase(s) backfill; the phases are expand"),
        ("compose_job", {"expand": None}, 600, "", "gives no job for any phase"),
        ("compose_job", {"expand": "migrate"}, 600, "", "switchyard_migrations_jobs.expand must be a mapping"),
        ("compose_job", {"expand": {"service": "m", "env": {}}}, 600, "", "expand: unknown key(s) env; a job has"),
        ("compose_job", {"expand": {"command": ["x"]}}, 600, "", "switchyard_migrations_jobs.expand.service=None"),
        ("compose_job", {"expand": {"service": "-x"}}, 600, "", "expand.service='-x': the Compose service"),
        ("compose_job", {"expand": {"service": "m"}}, 600, "", "expand.image_from='m': the job runs the verified"),
        (
            "compose_job",
            {"migrate": {"service": "m", "image_from": "db"}},
            600,
            "",
            "switchyard_migrations_jobs.migrate.image_from='db': the job runs the verified, digest-pinned image of "
            "one service of switchyard_images (api)",
        ),
        ("compose_job", {"expand": {"service": "api", "command": []}}, 600, "", "expand.command=[]: a non-empty"),
        ("compose_job", {"expand": {"service": "api", "command": " "}}, 600, "", "expand.command is empty"),
        ("compose_job", {"expand": {"service": "api", "command": [{"a": 1}]}}, 600, "", "expand.command=[{'a': 1}]"),
        ("compose_job", {"contract": {"service": "api", "timeout": -1}}, 600, "", "contract.timeout=-1: a positive"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(runner, jobs, timeout, directory, message) -> None:
    with pytest.raises(MigrationJobsError) as refused:
        migrations_runner(runner, jobs, IMAGES, timeout, directory)
    assert message in str(refused.value)


def test_the_filter_raises_an_ansible_filter_error() -> None:
    filters = FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match="one of builtin, compose_job"):
        filters["migrations_runner"]("liquibase")
    assert filters["migrations_runner"]("builtin")["runner"] == "builtin"


def test_a_phase_job_runs_the_pinned_image_and_is_told_its_phase() -> None:
    settings = migrations_runner("compose_job", JOBS, IMAGES, 90)
    assert migration_job(settings, "expand", IMAGES, "20260101-1") == {
        "service": "migrate",
        "image": IMAGES["api"],
        "timeout": 90,
        "command": ["alembic", "upgrade", "expand@head"],
        "public_environment": {"SWITCHYARD_MIGRATION_PHASE": "expand", "SWITCHYARD_RELEASE_ID": "20260101-1"},
    }
    assert migration_job(settings, "migrate", IMAGES) == {}  # no job for that phase: nothing runs
    assert migration_job(migrations_runner("builtin"), "expand", IMAGES) == {}
    with pytest.raises(MigrationJobsError, match="phase='status': a migration job runs for expand, migrate, contract"):
        migration_job(settings, "status", IMAGES)
    # contract runs in the live color: the ledger's images of that color, which may lack the service
    with pytest.raises(MigrationJobsError, match="no pinned image of that service .the color runs nothing recorded"):
        migration_job(settings, "contract", {})


def job_result(**job) -> dict:
    base = {
        "service": "migrate",
        "image": IMAGES["api"],
        "command": ["alembic"],
        "environment": ["DB_URL"],
        "public_environment": {"SWITCHYARD_MIGRATION_PHASE": "expand", "SWITCHYARD_RELEASE_ID": "r1"},
        "cmd": ["docker", "compose"],
        "stdout": "INFO  [alembic] Running upgrade",
        "stderr": "",
    }
    return {"project": "shop-green", "job": {**base, **job}}


def test_the_ledger_keeps_names_rc_and_seconds_never_a_value_or_the_output() -> None:
    done = migration_job_record(job_result(rc=0, duration=1.234, timed_out=False), "expand")
    assert done == {
        "phase": "expand",
        "project": "shop-green",
        "service": "migrate",
        "image": IMAGES["api"],
        "variables": ["DB_URL", "SWITCHYARD_MIGRATION_PHASE", "SWITCHYARD_RELEASE_ID"],
        "rc": 0,
        "duration_s": 1.234,
        "timed_out": False,
        "outcome": "done",
    }
    assert "r1" not in str(done) and "alembic" not in str(done)
    assert migration_job_record(job_result(rc=2, duration=0.5, timed_out=False), "expand")["outcome"] == "failed"
    timed = migration_job_record(job_result(rc=124, duration=3.0, timed_out=True), "migrate", "p")
    assert timed["outcome"] == "timed_out" and timed["timed_out"] is True and timed["project"] == "p"
    assert migration_job_record(job_result(skipped=True), "expand")["outcome"] == "planned"
    not_run = migration_job_record({"failed": True, "msg": "pulling x failed"}, "expand", "shop-green")
    assert not_run["outcome"] == "not_run" and not_run["error"] == "pulling x failed"


def test_the_failure_says_where_rc_seconds_and_the_last_lines() -> None:
    stderr = "\n".join(f"line {i}" for i in range(10)) + "\nsqlalchemy.exc.ProgrammingError: boom\n"
    failed = job_result(rc=1, duration=2.5, timed_out=False, stderr=stderr)
    assert migration_job_failure(failed, "expand") == (
        "the expand job (service migrate in project shop-green) exited with rc=1 after 2.5 s: "
        "line 6 | line 7 | line 8 | line 9 | sqlalchemy.exc.ProgrammingError: boom"
    )
    timed = job_result(rc=124, duration=3.01, timed_out=True, stdout="", stderr="")
    assert migration_job_failure(timed, "migrate") == (
        "the migrate job (service migrate in project shop-green) timed out after 3.01 s and was stopped (rc=124): "
        "no output"
    )
    assert migration_job_failure({"msg": "job image missing"}, "contract", "shop-blue") == (
        "the contract job (service ? in project shop-blue) did not run: job image missing"
    )
