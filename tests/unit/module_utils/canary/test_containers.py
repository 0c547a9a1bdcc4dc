"""The gate's containers source: parsers on output recorded from the testbed's Docker, and the judging."""

from __future__ import annotations

import json
import socket

import docker
import pytest
import requests
from support.recorded import DOCKER

from ansible_collections.switchyard.release.plugins.module_utils.canary import containers as c
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError, CommandRunner

API_ID = "0d74bb4b46a673c12227e6487f95f6380ea3dc85a36942812c65577de00427b2"  # healthy demo app
TB_ID = "caa705445cb5711d4abdaa1fbc6d5228747a8f8dcf863889fcffcfbc29348c4f"  # logs a traceback, unhealthy
OPTS = c.options({"projects": {"baseline": "shop-blue", "canary": "shop-green"}})


class Module:
    """What CommandRunner needs of AnsibleModule: run_command, answering with recorded output."""

    def __init__(self, answers):
        self.answers = answers  # {subcommand: (rc, out, err)}
        self.ran = []

    def run_command(self, args, environ_update=None, data=None, binary_data=False, expand_user_and_vars=True):
        self.ran.append((list(args), dict(environ_update or {})))
        return self.answers[args[1]]


def figures(containers=1, healthy=1, unhealthy=0, starting=0, restarts=0, requests=100, cpu=0.05, memory=30, errors=0):
    return {
        "containers": containers,
        "healthy": healthy,
        "unhealthy": unhealthy,
        "starting": starting,
        "restarts": restarts,
        "requests": requests,
        "cpu_seconds": cpu,
        "memory_bytes": int(memory * c.MIB * containers) if containers else None,
        "log_errors": errors,
        "log_error_examples": ["Traceback (most recent call last):"] if errors else [],
        "not_healthy": ["shop-green-api-1 exited"] if unhealthy else [],
        "restarted": ["shop-green-api-1 (1)"] if restarts else [],
    }


# -- parsers -------------------------------------------------------------------------------------------
def test_parse_ps_of_compose_containers_with_their_project():
    rows = c.parse_ps((DOCKER / "ps-projects.txt").read_text())
    assert rows == [(API_ID, "h16rec"), (TB_ID, "h16rec")]
    assert c.parse_ps("") == []
    with pytest.raises(ValueError, match="unexpected line"):
        c.parse_ps("Cannot connect to the Docker daemon\n")


def test_parse_inspect_reads_project_state_health_and_restarts():
    states = c.parse_inspect((DOCKER / "inspect-containers.json").read_text())
    assert states[API_ID]["project"] == "h16rec" and states[API_ID]["name"] == "h16rec-api-1"
    assert (states[API_ID]["state"], states[API_ID]["health"], states[API_ID]["restarts"]) == ("running", "healthy", 0)
    assert states[TB_ID]["health"] == "unhealthy"
    assert states[API_ID]["started_at"].startswith("2026-")
    for bad in ('{"Id": "x"}', "[1, 2]", "not json"):
        with pytest.raises(ValueError):
            c.parse_inspect(bad)


def recorded_jobs():
    """`docker compose up migrate` (runs `true`, exits 0) and `docker compose run migrate` of project h16rec."""
    states = c.parse_inspect((DOCKER / "inspect-jobs.json").read_text())
    (job,) = (cid for cid, state in states.items() if not state["oneoff"])
    (oneoff,) = (cid for cid, state in states.items() if state["oneoff"])
    return states, job, oneoff


def test_a_finished_job_is_not_unhealthy_and_a_one_off_is_not_watched():
    states, job, oneoff = recorded_jobs()
    assert (states[job]["state"], states[job]["exit_code"], states[job]["restart_policy"]) == ("exited", 0, "no")
    assert c.completed(states[job]) and states[oneoff]["oneoff"]
    for other in ({"exit_code": 1}, {"restart_policy": "always"}, {"restart_policy": "unless-stopped"}):
        assert not c.completed({**states[job], **other})  # failed, or Docker would start it again
    # containers(): the one-off (`docker compose run`) is left out, the job is listed.
    ids = [API_ID, job, oneoff]
    inspected = json.loads((DOCKER / "inspect-containers.json").read_text())
    inspected += json.loads((DOCKER / "inspect-jobs.json").read_text())
    w, _module = watch(
        {
            "ps": (0, "".join(f"{cid}\th16rec\n" for cid in ids), ""),
            "inspect": (0, json.dumps([i for i in inspected if i["Id"] in ids]), ""),
        }
    )
    found = w.containers()
    assert set(found["baseline"]) == {API_ID, job}
    # The finished job, there at both ends of the window: not a container of the color, not unhealthy, no
    # restart (and its logs are not read: no Docker asked here).
    w.started = 0
    done = {job: {**found["baseline"][job], "cpu_ns": None, "memory_bytes": None}}  # as snapshot() has it
    fig = w.role_figures("baseline", done, done, 0, 1, 1.0)
    assert (fig["containers"], fig["healthy"], fig["unhealthy"], fig["restarts"]) == (0, 0, 0, 0)
    # Nor is it a restart when it appears during the window or is removed.
    assert w.role_figures("baseline", {}, done, 0, 1, 1.0)["restarts"] == 0
    assert w.role_figures("baseline", done, {}, 0, 1, 1.0)["restarts"] == 0


def test_cpu_and_memory_from_one_shot_stats_as_docker_stats_counts_them():
    stats = json.loads((DOCKER / "stats-one-shot.json").read_text())
    assert c.cpu_ns(stats) == 210634106
    # usage minus the inactive page cache (cgroup v1 here: total_inactive_file), as `docker stats` shows it
    assert c.memory_bytes(stats) == 40923136 - 16060416
    assert c.memory_bytes({"memory_stats": {"usage": 1000, "stats": {"inactive_file": 200}}}) == 800  # cgroup v2
    assert c.cpu_ns({"cpu_stats": {}}) is None and c.memory_bytes({"memory_stats": {}}) is None  # exited


# -- logs ----------------------------------------------------------------------------------------------
def recorded_stderr():
    return (DOCKER / "logs-traceback.stderr").read_bytes()


def test_a_chained_traceback_counts_once_and_examples_hide_credentials():
    counter = c.LogCounter(c.DEFAULT_LOG_PATTERNS)
    counter.feed_stream([recorded_stderr()])
    assert counter.lines == 11
    assert counter.errors == 3  # ERROR line, one chained traceback, FATAL line
    assert counter.examples == [
        "ERROR could not reach postgres://demo:****@db:5432/demo",
        "Traceback (most recent call last):",
        "FATAL: token=****",
    ]
    assert not any("s3cr3t" in e or "abcd1234" in e for e in counter.examples)


@pytest.mark.parametrize("size", [1, 7, 64])
def test_lines_split_across_chunks_count_the_same(size):
    data = recorded_stderr() * 5
    counter = c.LogCounter(c.DEFAULT_LOG_PATTERNS)
    counter.feed_stream(data[i : i + size] for i in range(0, len(data), size))
    assert (counter.lines, counter.errors, len(counter.examples)) == (55, 15, 3)


def test_separate_tracebacks_each_count_and_a_long_line_stays_bounded():
    one = b'Traceback (most recent call last):\n  File "x.py", line 1, in f\n    boom()\nRuntimeError: injected\n'
    counter = c.LogCounter(c.DEFAULT_LOG_PATTERNS)
    data = one * 4 + b"GET / 200\n" + b"ERROR " + b"x" * (3 * c.MAX_LINE) + b" ERROR\nlast ERROR\n"
    counter.feed_stream(data[i : i + 1000] for i in range(0, len(data), 1000))
    assert counter.errors == 4 + 2 and counter.lines == 4 * 4 + 3  # the long line cut, counted once
    assert max(len(e) for e in counter.examples) <= c.EXAMPLE_LENGTH
    # Two threads' tracebacks interleaved line by line: still two errors.
    counter = c.LogCounter(c.DEFAULT_LOG_PATTERNS)
    counter.feed_stream([b"".join(a + b for a, b in zip(one.splitlines(True), one.splitlines(True), strict=True))])
    assert counter.errors == 2
    counter = c.LogCounter(["\\bwarn\\b"])
    counter.feed_stream([b"a warn\nERROR not mine\n"])
    assert counter.errors == 1


# -- judging -------------------------------------------------------------------------------------------
def test_health_fails_without_container_or_with_an_unhealthy_one_and_waits_for_starting():
    base = figures()
    assert c.judge_health(figures(containers=0, healthy=0), base)["status"] == "fail"
    failed = c.judge_health(figures(healthy=0, unhealthy=1), base)
    assert failed["status"] == "fail" and "shop-green-api-1 exited" in failed["reason"]
    assert c.judge_health(figures(healthy=0, starting=1), base)["status"] == "inconclusive"
    passed = c.judge_health(figures(), base)
    assert passed["status"] == "pass" and passed["source"] == "containers"
    assert (passed["canary"], passed["canary_n"]) == (1, 1)


def test_restarts_fail_above_max_restarts_whatever_the_traffic():
    failed = c.judge_restarts(figures(restarts=1, requests=0), figures(requests=0), 0)
    assert failed["status"] == "fail" and failed["canary"] == 1 and "shop-green-api-1 (1)" in failed["reason"]
    assert c.judge_restarts(figures(restarts=1), figures(), 1)["status"] == "pass"


def test_cpu_per_request_compares_with_the_baseline_with_a_tolerance():
    burning = c.judge_cpu(figures(cpu=2.5), figures(cpu=0.05), OPTS, 1)  # 25 ms vs 0.5 ms per request
    assert burning["status"] == "fail" and burning["canary"] == 25 and burning["baseline"] == 0.5
    # Three times the baseline, but 1 ms more per request: idle noise, within cpu_tolerance_ms.
    assert c.judge_cpu(figures(cpu=0.15), figures(cpu=0.05), OPTS, 1)["status"] == "pass"
    assert c.judge_cpu(figures(cpu=0.0), figures(cpu=0.0), OPTS, 1)["status"] == "pass"


def test_idle_cpu_spread_over_a_small_share_passes_and_a_real_burner_on_top_fails():
    """Two identical apps (1 ms per request, 30 ms/s idle per container, 2 containers per color) at a 10 %
    step of 60 requests/s over 10 s: the canary's idle CPU weighs on 9 times fewer requests."""
    seconds, containers, idle_s, rate = 10, 2, 0.030, 60

    def color(requests, ms_per_request):
        cpu = requests * ms_per_request / 1000 + containers * idle_s * seconds
        return figures(containers=containers, healthy=containers, requests=requests, cpu=cpu)

    canary, baseline = rate * seconds // 10, rate * seconds * 9 // 10  # 60 and 540 requests
    same = c.judge_cpu(color(canary, 1), color(baseline, 1), OPTS, 1)
    # Per request alone it would fail: 11 ms vs 2.1 ms, x5.2 and 8.9 ms more.
    assert same["canary"] == 11 and round(same["baseline"], 1) == 2.1 and same["ratio"] > 5
    assert same["status"] == "pass" and same["extra_ms"] < 0, same
    # The same candidate burning 15 ms more per request (the demo app's CPU_BURN_MS=15) fails.
    burner = c.judge_cpu(color(canary, 1 + 15), color(baseline, 1), OPTS, 1)
    assert burner["status"] == "fail" and burner["extra_ms"] == pytest.approx(7), burner  # (1.56 - 1.14 s) / 60
    # The other way round - the canary has the bigger share - identical apps pass too.
    assert c.judge_cpu(color(baseline, 1), color(canary, 1), OPTS, 1)["status"] == "pass"


@pytest.mark.parametrize(
    ("canary", "baseline", "why"),
    [
        (figures(requests=0), figures(), "too little traffic"),
        (figures(requests=50), figures(requests=50), "min_requests 100"),
        (figures(), figures(containers=0, healthy=0), "baseline's project has no container"),
        (figures(containers=0, healthy=0), figures(), "canary's project has no container"),
    ],
)
def test_per_request_comparisons_without_data_are_inconclusive_never_pass(canary, baseline, why):
    for metric in (c.judge_cpu(canary, baseline, OPTS, 100), c.judge_log_errors(canary, baseline, OPTS, 100)):
        assert metric["status"] == "inconclusive" and why in metric["reason"]


def test_memory_per_container_with_a_tolerance():
    assert c.judge_memory(figures(memory=400), figures(memory=30), OPTS)["status"] == "fail"
    assert c.judge_memory(figures(memory=80), figures(memory=30), OPTS)["status"] == "pass"  # within 64 MiB
    assert c.judge_memory(figures(), figures(containers=0, healthy=0), OPTS)["status"] == "inconclusive"


def test_log_errors_per_request_against_the_baseline():
    failed = c.judge_log_errors(figures(errors=20), figures(errors=0), OPTS, 1)
    assert failed["status"] == "fail" and failed["canary"] == 20 and failed["examples"]
    assert c.judge_log_errors(figures(errors=1), figures(errors=0), OPTS, 1)["status"] == "pass"  # 0.01 tolerated
    assert c.judge_log_errors(figures(errors=20), figures(errors=15), OPTS, 1)["status"] == "pass"
    # The same 18 lines of noise per container in both colors: the canary's smaller share of the requests
    # makes its rate per request 6 times the baseline's, yet it logs no more per container - a pass.
    noise = c.judge_log_errors(figures(errors=18, requests=49), figures(errors=18, requests=289), OPTS, 1)
    assert noise["status"] == "pass", noise
    more = c.judge_log_errors(figures(errors=18 + 49, requests=49), figures(errors=18, requests=289), OPTS, 1)
    assert more["status"] == "fail", more  # a traceback per request on top of the noise
    capped = c.judge_log_errors(figures(errors=3, requests=0), figures(requests=0), {**OPTS, "max_log_errors": 2}, 1)
    assert capped["status"] == "fail" and "max_log_errors=2" in capped["reason"]


def api_error(status, explanation):
    """The SDK's own exception for an Engine answer, as docker.errors.create_api_error_from_http_exception
    makes it."""
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Server Error", response=response, explanation=explanation)


def test_a_logging_driver_docker_cannot_read_back_is_told_apart_from_an_error():
    # What Docker 26 answers for a container run with --log-driver none.
    unreadable = api_error(501, "configured logging driver does not support reading")
    assert c.logs_unreadable(unreadable) == "configured logging driver does not support reading"
    assert c.logs_unreadable(docker.errors.DockerException("configured logging driver does not support reading"))
    assert c.logs_unreadable(api_error(500, "internal error")) is None
    assert c.logs_unreadable(docker.errors.NotFound("No such container", response=None)) is None


# -- validation and the commands -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"projects": {"baseline": "shop-blue"}}, "sources.containers.projects.canary"),
        ({"projects": {"baseline": "a", "canary": "a"}}, "baseline and canary are both 'a'"),
        ({"log_patterns": ["(unclosed"]}, "sources.containers.log_patterns: '(unclosed' is not a regular"),
        ({"max_cpu_ratio": 0.5}, "sources.containers.max_cpu_ratio=0.5: a ratio of 1 or more"),
        ({"memory_tolerance_mib": -1}, "sources.containers.memory_tolerance_mib=-1: 0 or more"),
    ],
)
def test_validate_names_the_parameter(source, message):
    full = {"projects": {"baseline": "shop-blue", "canary": "shop-green"}, **source}
    with pytest.raises(c.ContainerSourceError, match=message.replace("(", r"\(")):
        c.validate(full)


def watch(answers, **source):
    module = Module(answers)
    runner = CommandRunner(module, {"LANG": "C"})
    projects = {"baseline": "h16rec", "canary": "shop-green"}
    return c.ContainerWatch({"projects": projects, **source}, runner, {"min_requests": 1}), module


def test_containers_of_each_project_from_one_ps_and_one_inspect():
    ps = (0, (DOCKER / "ps-projects.txt").read_text(), "")
    inspect = (0, (DOCKER / "inspect-containers.json").read_text(), "")
    w, module = watch({"ps": ps, "inspect": inspect}, docker_host="tcp://127.0.0.1:2375")
    found = w.containers()
    assert set(found["baseline"]) == {API_ID, TB_ID} and found["canary"] == {}
    assert [args[1] for args, _env in module.ran] == ["ps", "inspect"]
    assert module.ran[0][1] == {"LANG": "C", "DOCKER_HOST": "tcp://127.0.0.1:2375"}


def test_output_the_parser_rejects_reports_the_command_whole():
    ps = (0, (DOCKER / "ps-projects.txt").read_text(), "")
    w, _module = watch({"ps": ps, "inspect": (0, "<html>oops</html>", "warning")})
    with pytest.raises(CommandError) as caught:
        w.containers()
    result = caught.value.result()
    assert result["cmd"][:4] == ["docker", "inspect", "--type", "container"]
    assert (result["rc"], result["stdout"], result["stderr"]) == (0, "<html>oops</html>", "warning")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


def test_the_sdk_talks_to_the_daemon_the_cli_does(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    # DOCKER_HOST of the commands' environment, as the CLI: nothing listens there, and the error says where.
    port = closed_port()
    module = Module({})
    w = c.ContainerWatch(
        {"projects": {"baseline": "a", "canary": "b"}},
        CommandRunner(module, {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}),
        {},
    )
    with pytest.raises(c.ContainerSourceError, match=f"cannot reach the Docker daemon at tcp://127.0.0.1:{port}: "):
        w.begin()
    # docker_host wins over the environment's; a docker context that does not exist is said as such.
    w, _module = watch({}, docker_host=f"tcp://127.0.0.1:{port}")
    with pytest.raises(c.ContainerSourceError, match=f"127.0.0.1:{port}"):
        w.client()
    w = c.ContainerWatch(
        {"projects": {"baseline": "a", "canary": "b"}}, CommandRunner(module, {"DOCKER_CONTEXT": "sytest-none"}), {}
    )
    with pytest.raises(c.ContainerSourceError, match="docker context 'sytest-none' not found"):
        w.begin()


def test_without_the_docker_sdk_begin_names_the_way_out(monkeypatch):
    monkeypatch.setattr(c, "HAS_DOCKER_SDK", False)
    w, module = watch({})
    with pytest.raises(c.ContainerSourceError, match="switchyard_gate_containers: false") as caught:
        w.begin()
    assert "Failed to import the required Python library (docker" in caught.value.msg
    assert module.ran == []  # said before anything is asked of Docker
