"""The gate's containers source on real demo app containers with faults injected into candidates whose HTTP
answers all stay 200: one restarts (CRASH_AFTER_S), one burns CPU (CPU_BURN_MS), one logs tracebacks
(LOG_TRACEBACKS); a healthy one passes. One baseline (blue v1) and four candidates (v2) run side by side and
are watched over the same window of real traffic."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import docker as sdk
import pytest
import requests
from support.compose import ComposeProject, docker, ensure_network, free_port, remove_network, unique_name
from support.load import Load
from support.stack import DEMO_DIR, make_demo_secrets
from support.testbed import Testbed

from ansible_collections.switchyard.release.plugins.module_utils.canary.containers import ContainerWatch
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner

CANDIDATES = {
    "green": {},
    "crash": {"DEMO_CRASH_AFTER_S": "3"},
    "cpu": {"DEMO_CPU_BURN_MS": "15"},
    "logs": {"DEMO_LOG_TRACEBACKS": "1"},
}
WINDOW_S = 6
RATE = 20  # requests per second to each color


class Shell:
    """What CommandRunner asks of AnsibleModule: run_command, here running the real docker CLI; warn."""

    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def run_command(self, args, environ_update=None, data=None, binary_data=False, expand_user_and_vars=True):
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr


class Color:
    def __init__(self, testbed: Testbed, app: str, color: str, version: str, secrets, env: dict[str, str]):
        self.port = free_port()
        self.project = ComposeProject(
            name=f"{app}-{color}",
            files=[DEMO_DIR / "compose.base.yaml", DEMO_DIR / "compose.local.yaml"],
            env={
                "SWITCHYARD_APP": app,
                "SWITCHYARD_COLOR": color,
                "DEMO_SECRETS_DIR": str(secrets),
                "DEMO_PORT": str(self.port),
                "DEMO_APP_IMAGE": testbed.pinned(f"demo-app:{version}"),
                "DEMO_HEALTH_DB_CHECK": "0",  # no database: / never touches it, /health then answers 200
                "DEMO_HEALTH_START_PERIOD": "5s",
                **env,
            },
        )
        self.url = f"http://127.0.0.1:{self.port}/"

    def up(self) -> None:
        self.project.run("up", "--detach", "--wait", "--wait-timeout", "60")


@pytest.fixture(scope="module")
def window(testbed: Testbed, tmp_path_factory) -> Iterator[dict]:
    """Every candidate watched against blue over one window of real traffic: {color: (metrics, figures, answers)}."""
    app = unique_name("ctr")
    networks = {f"{app}_edge": False, f"{app}_data": True}
    for net, internal in networks.items():
        ensure_network(net, internal)
    secrets = make_demo_secrets(tmp_path_factory.mktemp("ctr") / "secrets")
    colors = {"blue": Color(testbed, app, "blue", "v1", secrets, {})}
    colors.update({name: Color(testbed, app, name, "v2", secrets, env) for name, env in CANDIDATES.items()})
    try:
        threads = [threading.Thread(target=color.up) for color in colors.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for color in colors.values():  # a failed `up` raised in its thread: say so here
            assert color.project.run("ps", "--quiet").stdout.strip(), f"{color.project.name} did not start"
        runner = CommandRunner(Shell())
        watches = {
            name: ContainerWatch(
                {"projects": {"baseline": f"{app}-blue", "canary": f"{app}-{name}"}}, runner, {"min_requests": 20}
            )
            for name in CANDIDATES
        }
        loads = {name: Load(color.url, rate=RATE, seconds=WINDOW_S, connections=2) for name, color in colors.items()}
        for watch in watches.values():
            watch.begin()
        for load in loads.values():
            load.start()
        for load in loads.values():
            load.join()
        served = {name: sum(1 for status in load.answers if status == 200) for name, load in loads.items()}
        started = time.monotonic()
        results = {
            name: (*watch.end({"baseline": served["blue"], "canary": served[name]}), loads[name].answers)
            for name, watch in watches.items()
        }
        results["blue"] = (None, None, loads["blue"].answers)
        results["end_seconds"] = time.monotonic() - started
        yield results
    finally:
        for color in colors.values():
            color.project.down()
        for net in networks:
            remove_network(net)


def by_name(metrics: list[dict]) -> dict:
    return {m["metric"]: m for m in metrics}


def test_a_healthy_candidate_passes_every_container_metric(window) -> None:
    metrics, figures, answers = window["green"]
    assert answers and set(answers) == {200} and set(window["blue"][2]) == {200}
    assert {m["metric"]: m["status"] for m in metrics} == {
        "container_health": "pass",
        "restarts": "pass",
        "cpu_per_request": "pass",
        "memory": "pass",
        "log_errors": "pass",
    }, metrics
    for role in ("baseline", "canary"):
        assert figures[role]["containers"] == 1 and figures[role]["healthy"] == 1
        assert figures[role]["cpu_seconds"] > 0 and figures[role]["memory_bytes"] > 0
    # Four watches ending one after the other, each reading Docker for both colors: cheap enough per window.
    assert window["end_seconds"] < 4 * 0.5


def test_a_candidate_that_restarts_fails_on_restarts_while_answering_200(window) -> None:
    metrics, figures, answers = window["crash"]
    answered = [status for status in answers if status != -1]  # -1: refused while the container restarts
    assert answered.count(200) >= RATE and set(answered) == {200}
    restarts = by_name(metrics)["restarts"]
    assert restarts["status"] == "fail" and restarts["canary"] >= 1, restarts
    assert figures["canary"]["restarts"] >= 1 and figures["baseline"]["restarts"] == 0


def test_a_candidate_that_burns_cpu_does_not_pass_cpu_per_request(window) -> None:
    metrics, figures, answers = window["cpu"]
    assert answers and set(answers) == {200}
    cpu = by_name(metrics)["cpu_per_request"]
    assert cpu["status"] == "fail", cpu
    assert cpu["canary"] >= 10 and cpu["canary"] > 5 * cpu["baseline"]  # ms per request; 15 burnt
    # The same rate to each color (an even split, one container each): the CPU beyond a baseline container's
    # is the burner's, per request (idle CPU at a small step: the unit tests).
    assert cpu["extra_ms"] >= 10, cpu
    assert by_name(metrics)["restarts"]["status"] == "pass"
    assert figures["canary"]["cpu_percent"] > figures["baseline"]["cpu_percent"]


def test_a_candidate_that_logs_tracebacks_fails_on_log_errors_while_answering_200(window) -> None:
    metrics, figures, answers = window["logs"]
    assert answers and set(answers) == {200}
    errors = by_name(metrics)["log_errors"]
    assert errors["status"] == "fail", errors
    served = errors["canary_n"]
    # One traceback per request, each counted once (not once per line of it).
    assert 0.9 * served <= figures["canary"]["log_errors"] <= served
    assert figures["canary"]["log_error_examples"][0] == "Traceback (most recent call last):"
    assert figures["baseline"]["log_errors"] == 0


def test_unreadable_logs_are_left_unjudged_and_finished_jobs_or_one_offs_are_not_unhealthy(testbed: Testbed) -> None:
    """A canary whose service logs to the `none` driver, beside a job that ran to completion (exit 0, no
    restart policy) and a `compose run` one-off that failed: two windows pass on health and restarts, have
    no log_errors metric, and warn once."""
    app = unique_name("ctrx")
    image = testbed.pinned("demo-app:v1")

    def run(name, *args, command="sleep", detach=True):
        color = name.split("-")[0]
        detached = ["--detach"] if detach else []
        sleep = ["60"] if command == "sleep" else []
        label = f"com.docker.compose.project={app}-{color}"
        args = ["--name", f"{app}-{name}", "--label", label, "--no-healthcheck", "--entrypoint", command, *args]
        docker("run", *detached, *args, image, *sleep, check=command != "false")  # `false` exits 1
        return docker("inspect", "--format", "{{.Id}}", f"{app}-{name}").stdout.strip()

    try:
        run("blue-api-1")
        api = run("green-api-1", "--log-driver", "none")
        run("green-migrate-1", command="true", detach=False)
        run("green-api-run-1", "--label", "com.docker.compose.oneoff=True", command="false", detach=False)
        shell = Shell()
        results = []
        for _window in range(2):
            watch = ContainerWatch(
                {"projects": {"baseline": f"{app}-blue", "canary": f"{app}-green"}}, CommandRunner(shell), {}
            )
            watch.begin()
            results.append(watch.end({"baseline": 0, "canary": 0}))
        for metrics, figures in results:
            assert "log_errors" not in by_name(metrics), metrics
            health = by_name(metrics)["container_health"]
            assert (health["status"], health["canary"], health["canary_n"]) == ("pass", 1, 1), health
            assert by_name(metrics)["restarts"]["status"] == "pass"
            assert figures["canary"]["log_errors"] is None and figures["baseline"]["log_errors"] == 0
            assert (
                figures["canary"]["log_unreadable"]
                == f"{app}-green-api-1: configured logging driver does not support reading"
            )
            assert figures["baseline"]["log_unreadable"] is None
        assert len(shell.warnings) == 1 and f"{app}-green-api-1" in shell.warnings[0]
        assert "log_errors is not judged" in shell.warnings[0]
        # A 404 of stats or logs means "removed" only when the container is indeed gone.
        missing = docker_api_error(404)
        assert watch.gone("0" * 64, missing) and not watch.gone(api, missing)
    finally:
        names = [f"{app}-{n}" for n in ("blue-api-1", "green-api-1", "green-migrate-1", "green-api-run-1")]
        docker("rm", "--force", *names, check=False)


def docker_api_error(status):
    """The SDK's exception for an Engine answer of that status."""
    response = requests.Response()
    response.status_code = status
    return sdk.errors.APIError(f"{status} Client Error", response=response)
