"""switchyard.release.compose_project against the real Docker Engine, Compose v2 and registry."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import DEMO_DIR
from support.compose import ComposeProject, docker, free_port
from support.leaks import command_lines_while, occurrences
from support.modules import four_way, run_module
from support.testbed import Testbed

MIGRATIONS = DEMO_DIR / "migrations"
NO_ACTIONS = {"created": [], "recreated": [], "started": [], "stopped": [], "removed": []}


class DemoColor:
    """The arguments of compose_project for one color of the demo app, with its env file."""

    def __init__(self, app: str, color: str, secrets_dir: Path, workdir: Path, files: list[Path], **env: str) -> None:
        self.project = f"{app}-{color}"
        self.files = [str(f) for f in files]
        self.port = free_port()
        variables = {
            "SWITCHYARD_APP": app,
            "SWITCHYARD_COLOR": color,
            "DEMO_SECRETS_DIR": str(secrets_dir),
            "DEMO_PORT": str(self.port),
            **env,
        }
        self.env_file = workdir / f"{self.project}.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))

    def args(self, **extra) -> dict:
        return {
            "project": self.project,
            "files": self.files,
            "env_files": [str(self.env_file)],
            "wait_timeout": 40,
            **extra,
        }

    def root(self) -> dict:
        return requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).json()

    def container_ids(self) -> list[str]:
        return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}").stdout.split()


@pytest.fixture
def schema(demo_data: ComposeProject) -> ComposeProject:
    """The demo database after 0001 and the 0002 expand: v1 and v2 both work on it."""
    demo_data.psql_file(MIGRATIONS / "0001_create_items" / "expand.sql")
    demo_data.psql_file(MIGRATIONS / "0002_display_name" / "expand.sql")
    return demo_data


@pytest.fixture
def make_color(demo_app_name, demo_secrets, demo_files, tmp_path) -> Iterator:
    made: list[DemoColor] = []

    def make(color: str, **env: str) -> DemoColor:
        made.append(DemoColor(demo_app_name, color, demo_secrets, tmp_path, demo_files, **env))
        return made[-1]

    yield make
    for color in made:
        ComposeProject(color.project, []).down()


def assert_four_way(results: list[dict], expect_change: bool) -> None:
    check, apply, check_again, apply_again = results
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert check["changed"] is expect_change and apply["changed"] is expect_change
    assert check["actions"] == apply["actions"]
    assert check_again["changed"] is False and check_again["actions"] == NO_ACTIONS
    assert apply_again["changed"] is False and apply_again["actions"] == NO_ACTIONS


def test_present_four_ways_then_v2_recreates_only_the_app(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    v1 = blue.args(images={"api": testbed.image("demo-app:v1")}, labels={"io.switchyard.color": "blue"})
    results = four_way("compose_project", v1)
    assert_four_way(results, expect_change=True)
    assert results[0]["actions"]["created"] == ["api"]
    assert results[0]["services"] == []  # check mode changed nothing
    (api,) = results[1]["services"]
    assert api["health"] == "healthy" and api["digest"] == testbed.pinned("demo-app:v1").split("@")[1]
    assert api["labels"]["io.switchyard.color"] == "blue"
    assert results[1]["images"] == {"api": testbed.pinned("demo-app:v1")}
    # From `up` to healthy, measured by the module (a recreate records it as the new version's health time).
    assert results[1]["ready_s"] > 0 and "ready_s" not in results[0] and "ready_s" not in results[3]
    assert blue.root()["version"] == "v1"
    # The override next to the files is what pins the image.
    override = Path(results[1]["override_file"])
    assert override.parent == Path(v1["files"][0]).parent
    assert testbed.pinned("demo-app:v1") in override.read_text()

    v2 = {**v1, "images": {"api": testbed.image("demo-app:v2")}}
    results = four_way("compose_project", v2)
    assert_four_way(results, expect_change=True)
    assert results[1]["actions"] == {**NO_ACTIONS, "recreated": ["api"]}
    assert results[1]["diff"]["before"]["api"]["image"] == testbed.pinned("demo-app:v1")
    assert results[1]["diff"]["after"]["api"]["image"] == testbed.pinned("demo-app:v2")
    assert blue.root()["version"] == "v2"


def test_blue_and_green_side_by_side_do_not_interfere(testbed: Testbed, schema, make_color) -> None:
    blue, green = make_color("blue"), make_color("green")
    assert not run_module("compose_project", blue.args(images={"api": testbed.image("demo-app:v1")})).get("failed")
    blue_ids = blue.container_ids()
    result = run_module("compose_project", green.args(images={"api": testbed.image("demo-app:v2")}))
    assert not result.get("failed"), result.get("msg")
    assert blue.container_ids() == blue_ids
    assert blue.root() | {"host": None} == {"version": "v1", "color": "blue", "host": None}
    assert green.root()["version"] == "v2" and green.root()["color"] == "green"
    # Both colors answer under their aliases on the shared edge network.
    for color in ("blue", "green"):
        probe = docker(
            "run",
            "--rm",
            "--network",
            f"{blue.project.rsplit('-', 1)[0]}_edge",
            testbed.pinned("demo-app:v1"),
            "curl",
            "-fsS",
            f"http://api-{color}:8000/",
        )
        assert f'"color":"{color}"' in probe.stdout


def test_stopped_and_absent_four_ways_keep_named_volumes(testbed: Testbed, schema, make_color, demo_data) -> None:
    blue = make_color("blue")
    assert not run_module("compose_project", blue.args(images={"api": testbed.image("demo-app:v1")})).get("failed")

    results = four_way("compose_project", {"project": blue.project, "state": "stopped"})
    assert_four_way(results, expect_change=True)
    assert results[1]["actions"]["stopped"] == ["api"]
    assert [c["state"] for c in results[1]["services"]] == ["exited"]

    # started: the same containers again, healthy, without files (a rollback to a stopped color) - and only
    # when they run the digests given (what the ledger recorded): other ones are refused, nothing started.
    stopped_ids = blue.container_ids()
    other = run_module(
        "compose_project",
        {"project": blue.project, "state": "started", "images": {"api": testbed.pinned("demo-app:v2")}},
    )
    assert other["failed"] and "does not run the images given" in other["msg"], other["msg"]
    assert f"not {testbed.pinned('demo-app:v2')}" in other["msg"]
    assert docker("inspect", "-f", "{{.State.Status}}", stopped_ids[0]).stdout.strip() == "exited"
    recorded = {"api": testbed.pinned("demo-app:v1")}
    results = four_way(
        "compose_project", {"project": blue.project, "state": "started", "wait_timeout": 60, "images": recorded}
    )
    assert_four_way(results, expect_change=True)
    assert results[1]["actions"]["started"] == ["api"] and blue.container_ids() == stopped_ids
    assert [(c["state"], c["health"]) for c in results[1]["services"]] == [("running", "healthy")]
    stop = run_module("compose_project", {"project": blue.project, "state": "stopped"})
    assert not stop.get("failed"), stop.get("msg")

    results = four_way("compose_project", {"project": blue.project, "state": "absent"})
    assert_four_way(results, expect_change=True)
    assert blue.container_ids() == []
    # Nothing to start once removed: said so, nothing created.
    gone = run_module("compose_project", {"project": blue.project, "state": "started"})
    assert gone["failed"] and "has no containers (it was removed" in gone["msg"], gone["msg"]
    assert blue.container_ids() == []

    # The data project's named volume survives absent unless remove_volumes is set.
    volume = f"{demo_data.name}_pgdata"
    results = four_way("compose_project", {"project": demo_data.name, "state": "absent", "stop_timeout": 30})
    assert_four_way(results, expect_change=True)
    assert docker("volume", "inspect", volume, check=False).returncode == 0
    results = four_way("compose_project", {"project": demo_data.name, "state": "absent", "remove_volumes": True})
    assert_four_way(results, expect_change=True)
    assert results[0]["volumes_removed"] == [volume]
    assert docker("volume", "inspect", volume, check=False).returncode != 0


def test_a_run_that_lost_its_release_lock_changes_no_container(make_color, tmp_path, testbed: Testbed) -> None:
    """The lease: compose_project checks the token before anything changes, and names the holder."""
    state = tmp_path / "state"
    rs = {"app": "shop", "path": str(state), "release_id": "r1"}
    mine = run_module("release_state", {**rs, "action": "lock", "lock_ttl": 60})
    run_module("release_state", {**rs, "action": "lock", "release_id": "r2", "owner": "bob@ctl", "force": True})
    blue = make_color("blue")
    lease = {"app": "shop", "path": str(state), "token": mine["lock_token"]}
    args = blue.args(images={"api": testbed.image("demo-app:v1")}, lease=lease)
    result = run_module("compose_project", args)
    assert result["failed"] and result["msg"].startswith("refusing to act: action=renew"), result["msg"]
    assert "held by bob@ctl (release r2)" in result["msg"]
    assert blue.container_ids() == []


def test_a_tag_is_refused_without_resolution_naming_the_service(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    args = blue.args(images={"api": testbed.image("demo-app:v1")}, resolve_digests=False)
    for check in (True, False):
        result = run_module("compose_project", args, check=check)
        assert result["failed"] and "service 'api'" in result["msg"] and "not pinned by digest" in result["msg"]
    assert blue.container_ids() == []
    # An unknown tag fails before anything starts, with what the registry said.
    result = run_module("compose_project", blue.args(images={"api": testbed.image("demo-app:no-such-tag")}))
    assert result["failed"] and "did not resolve" in result["msg"]
    assert blue.container_ids() == []


def test_a_service_that_never_gets_healthy_fails_with_its_health_output_and_logs(
    testbed: Testbed, schema, make_color
) -> None:
    blue = make_color("blue")
    assert not run_module("compose_project", blue.args(images={"api": testbed.image("demo-app:v1")})).get("failed")
    blue_ids = blue.container_ids()
    green = make_color("green", DEMO_UNHEALTHY="1", DEMO_HEALTH_START_PERIOD="2s")
    result = run_module("compose_project", green.args(images={"api": testbed.image("demo-app:v2")}))
    assert result["failed"] and result["changed"] is True
    assert "api" in result["msg"] and "unhealthy" in result["msg"]
    (failure,) = result["failures"]
    assert failure["container"] == f"{green.project}-api-1"
    assert failure["health_log"] and all(h["exit_code"] != 0 for h in failure["health_log"])
    assert failure["logs"], "the tail of the container's logs is part of the failure"
    assert blue.container_ids() == blue_ids and blue.root()["version"] == "v1"


def test_a_service_that_crashes_on_start_fails_fast(testbed: Testbed, schema, make_color) -> None:
    green = make_color("green", DEMO_CRASH_ON_START="1")
    result = run_module("compose_project", green.args(images={"api": testbed.image("demo-app:v2")}, wait_timeout=60))
    assert result["failed"], result
    (failure,) = result["failures"]
    assert failure["state"] in ("restarting", "exited") and failure["exit_code"] == 3
    assert "failed" in result["msg"] and "not ready after" not in result["msg"]


def test_one_off_jobs_report_rc_and_output(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    base = blue.args(images={"api": testbed.image("demo-app:v2")})
    ok = run_module(
        "compose_project",
        {
            **base,
            # An argument reaches the job as written: `$HOME` and `~` are not expanded on the Docker host.
            "run": {"service": "api", "command": ["python3", "-c", "import sys; print(sys.argv[1])", "3 rows $HOME ~"]},
        },
    )
    assert not ok.get("failed"), ok.get("msg")
    assert ok["job"]["rc"] == 0 and "3 rows $HOME ~" in ok["job"]["stdout"] and ok["job"]["duration"] > 0
    failing = run_module(
        "compose_project",
        {
            **base,
            "run": {
                "service": "api",
                "command": "python3 -c 'import sys; print(\"boom\"); sys.exit(3)'",
                "environment": {"JOB": "x"},
            },
        },
    )
    assert failing["failed"] and failing["job"]["rc"] == 3 and "boom" in failing["job"]["stdout"]
    assert failing["msg"] == "job api exited with 3"
    check = run_module("compose_project", {**base, "run": {"service": "api", "command": "false"}}, check=True)
    assert not check.get("failed") and check["job"]["skipped"] is True
    # One-off containers are removed (--rm) and never counted as the project's services.
    assert all(not c["oneoff"] for c in ok["services"])
    assert (
        docker(
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project={blue.project}",
            "--filter",
            "label=com.docker.compose.oneoff=True",
        ).stdout.strip()
        == ""
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"state": "running"}, "value of state must be one of: present, stopped, started, absent, restarted"),
        ({"images": {"nope": "x@sha256:" + "a" * 64}}, "images: unknown service(s) nope; the project has: api"),
        ({"wait_timeout": 0}, "wait_timeout must be a positive number"),
        # The caller verified the images it names: a service it does not name would run its file's image.
        ({"images": {}, "images_only": True}, "images_only: service(s) api of the project are not in images"),
        ({"project": "Shop Blue"}, "project='Shop Blue' is not a Compose project name"),
        ({"files": ["/nonexistent/compose.yaml"]}, "files/env_files: /nonexistent/compose.yaml does not exist"),
        ({"pull": "sometimes"}, "value of pull must be one of: missing, always, never"),
        (
            {"run": {"service": "api", "environment": {"A=B": "x"}}},
            "run.environment: 'A=B' is not a variable name - a letter or '_', then letters, digits",
        ),
    ],
)
def test_bad_input_names_the_parameter_before_anything_changes(make_color, args: dict, message: str) -> None:
    blue = make_color("blue")
    result = run_module("compose_project", blue.args(**args))
    assert result["failed"] and message in result["msg"], result["msg"]
    assert blue.container_ids() == []


def test_v2_recreates_only_the_app_service(testbed: Testbed, schema, make_color, tmp_path) -> None:
    blue = make_color("blue")
    sidecar = tmp_path / "project" / "compose.sidecar.yaml"
    sidecar.write_text(f"services:\n  sidecar:\n    image: {testbed.image('haproxy:2.6')}\n")
    args = blue.args(images={"api": testbed.image("demo-app:v1")})
    args["files"] = [*args["files"], str(sidecar)]
    first = run_module("compose_project", args)
    assert not first.get("failed"), first.get("msg")
    assert first["actions"]["created"] == ["api", "sidecar"]
    assert first["images"]["sidecar"] == testbed.pinned("haproxy:2.6")
    sidecar_id = {c["service"]: c["id"] for c in first["services"]}["sidecar"]

    second = run_module("compose_project", {**args, "images": {"api": testbed.image("demo-app:v2")}})
    assert not second.get("failed"), second.get("msg")
    assert second["actions"] == {**NO_ACTIONS, "recreated": ["api"]}
    assert {c["service"]: c["id"] for c in second["services"]}["sidecar"] == sidecar_id


def test_restarted_restarts_in_apply_mode_only(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    missing = run_module("compose_project", blue.args(state="restarted"))
    assert missing["failed"] and "has no containers; use state=present" in missing["msg"]
    assert not run_module("compose_project", blue.args(images={"api": testbed.image("demo-app:v1")})).get("failed")

    def started_at() -> str:
        return docker("inspect", "--format", "{{.State.StartedAt}}", f"{blue.project}-api-1").stdout.strip()

    before = started_at()
    check = run_module("compose_project", blue.args(state="restarted"), check=True)
    assert check["changed"] is True and check["actions"]["started"] == ["api"]
    assert started_at() == before
    applied = run_module("compose_project", blue.args(state="restarted"))
    assert applied["changed"] is True and not applied.get("failed"), applied.get("msg")
    assert started_at() != before
    assert [c["health"] for c in applied["services"]] == ["healthy"]


def test_pulled_pulls_the_missing_images_and_touches_no_container(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    tag, pinned = testbed.fresh_repository("demo-app:v1")
    try:
        args = blue.args(state="pulled", images={"api": tag})
        check, apply, check_again, apply_again = four_way("compose_project", args)
        for r in (check, apply, check_again, apply_again):
            assert not r.get("failed"), r.get("msg")
            assert r["images"] == {"api": pinned} and r["services"] == [] and r["actions"] == NO_ACTIONS
        assert check["changed"] is True and check["pulled"] == [pinned]
        assert apply["changed"] is True and apply["pulled"] == [pinned]
        assert check_again["changed"] is False and check_again["pulled"] == []
        assert apply_again["changed"] is False and apply_again["pulled"] == []
        assert docker("image", "inspect", pinned, check=False).returncode == 0
        assert blue.container_ids() == [], "nothing of the project was created"

        # Without files, the images given; pull=never says which is missing, and run is refused.
        docker("rmi", pinned)
        alone = {"project": blue.project, "state": "pulled", "images": {"api": pinned}}
        never = run_module("compose_project", {**alone, "pull": "never"})
        assert never["failed"] and never["msg"] == f"pull=never but image(s) are not on the host: {pinned}"
        assert run_module("compose_project", alone)["pulled"] == [pinned]
        job = run_module("compose_project", {**args, "run": {"service": "api"}})
        assert job["failed"] and job["msg"].startswith("state=pulled only pulls the project's images")
        nothing = run_module("compose_project", {"project": blue.project, "state": "pulled"})
        assert nothing["failed"] and nothing["msg"].startswith("state=pulled needs images, or files to read")
    finally:
        docker("rmi", pinned, check=False)


def test_a_failed_pull_or_an_unreachable_daemon_changes_nothing(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    unknown_digest = f"{testbed.registry}/switchyard/demo-app@sha256:{'0' * 64}"
    result = run_module("compose_project", blue.args(images={"api": unknown_digest}))
    assert result["failed"] and result["msg"].startswith(f"pulling {unknown_digest} failed")
    assert result["cmd"][:2] == ["docker", "pull"] and result["rc"] != 0 and result["stderr"]
    assert blue.container_ids() == []

    down = run_module("compose_project", blue.args(docker_host="unix:///nonexistent/docker.sock"))
    assert down["failed"] and down["rc"] != 0 and "docker.sock" in down["stderr"]
    assert down["cmd"][:2] == ["docker", "ps"]


def test_a_secret_in_the_job_environment_reaches_no_command_line_and_no_result(
    testbed: Testbed, schema, make_color, tmp_path
) -> None:
    """run.environment carries a secret (with $, quotes, a backslash): while the job runs, no process's command
    line has it; the job sees it exactly; the file that carried it is gone afterwards, also when the job fails;
    the result (the invocation, the job's cmd and its output, which prints it) holds it 0 times."""
    blue = make_color("blue")
    marker = uuid.uuid4().hex  # looked for alone too: a secret mangled on its way ($HOME expanded) still shows
    secret = f"s3cr3t-{marker}-$HOME-${{X}}-'q\"\\"
    module_tmp = tmp_path / "module-tmp"  # where Ansible puts the module's temporary files (kept: we look inside)
    module_tmp.mkdir()
    script = (
        "import hashlib, os, sys, time; v = os.environ['JOB_SECRET']; time.sleep(float(sys.argv[1])); "
        "print(hashlib.sha256(v.encode()).hexdigest()); print('the secret is', v); sys.exit(int(sys.argv[2]))"
    )
    args = blue.args(images={"api": testbed.image("demo-app:v2")}, _ansible_tmpdir=str(module_tmp))

    def job(sleep: str, rc: str) -> dict:
        return {
            "service": "api",
            "command": ["python3", "-c", script, sleep, rc],
            "environment": {"JOB_SECRET": secret, "SHORT": "x"},
        }

    with ThreadPoolExecutor(1) as pool:  # the color comes up, then the job runs 3 s
        running = pool.submit(run_module, "compose_project", {**args, "run": job("3", "0")})
        hits, env_files = command_lines_while(running, marker, collect="job.environment.yml")
        result = running.result()
    assert not result.get("failed"), result.get("msg")
    assert env_files, "the scan never saw the job running"
    assert hits == 0
    assert result["job"]["stdout"].splitlines()[0] == hashlib.sha256(secret.encode()).hexdigest()
    assert "the secret is ********" in result["job"]["stdout"]
    assert result["job"]["environment"] == ["JOB_SECRET", "SHORT"]
    assert result["invocation"]["module_args"]["run"]["environment"] == {
        "JOB_SECRET": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
        "SHORT": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
    }
    assert occurrences(result, marker) == 0
    assert not any(Path(f).exists() for f in env_files) and list(module_tmp.iterdir()) == []

    failed = run_module("compose_project", {**args, "run": job("0", "3")})
    assert failed["failed"] and failed["msg"] == "job api exited with 3"  # not garbled by the short "x"
    assert occurrences(failed, marker) == 0 and "the secret is ********" in failed["job"]["stdout"]
    assert list(module_tmp.iterdir()) == []


def test_a_job_that_runs_too_long_is_stopped_and_removed(testbed: Testbed, schema, make_color) -> None:
    blue = make_color("blue")
    args = blue.args(
        images={"api": testbed.image("demo-app:v1")},
        run={"service": "api", "command": ["sleep", "60"], "timeout": 2},
    )
    result = run_module("compose_project", args, timeout=120)
    assert result["failed"] and result["msg"] == "job api timed out"
    assert result["job"]["timed_out"] is True and result["job"]["duration"] < 30
    leftovers = docker(
        "ps",
        "-aq",
        "--filter",
        f"label=com.docker.compose.project={blue.project}",
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ).stdout.strip()
    assert leftovers == ""


def test_a_recreate_that_fails_before_its_stop_leaves_the_old_version_serving(
    testbed: Testbed, schema, make_color, tmp_path
) -> None:
    blue = make_color("blue")
    v1 = blue.args(images={"api": testbed.image("demo-app:v1")})
    first = run_module("compose_project", v1)
    assert not first.get("failed"), first.get("msg")
    running = blue.container_ids()
    staged = tmp_path / "project" / "blue.staged"
    staged.mkdir()
    for path in v1["files"]:
        shutil.copy(path, staged / Path(path).name)
    recreate = {**v1, "images": {"api": testbed.image("demo-app:v2")}, "stop_first": True, "staged_dir": str(staged)}

    # The env file was not staged: refused before the stop - the caller reads touched to know v1 still runs as it did.
    failed = run_module("compose_project", recreate)
    assert failed.get("failed") and "staged_dir:" in failed["msg"] and blue.env_file.name in failed["msg"], failed
    assert failed["touched"] is False and "stopped_s" not in failed
    assert blue.container_ids() == running and blue.root()["version"] == "v1"

    shutil.copy(blue.env_file, staged / blue.env_file.name)
    done = run_module("compose_project", recreate)
    assert not done.get("failed"), done.get("msg")
    assert done["touched"] is True and done["stopped_s"] > 0 and done["ready_s"] > 0
    assert sorted(done["staged"]) == sorted(v1["files"] + v1["env_files"]) and not any(staged.iterdir())
    assert blue.root()["version"] == "v2"
