"""switchyard.release.canary_gate on real traffic through a real HAProxy to the demo app's colors,
with faults injected into the canary."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support.compose import ComposeProject, docker, unique_name
from support.load import Load
from support.modules import run_module
from support.stack import DEMO_DIR, Stack, shift
from support.testbed import Testbed


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    built = Stack(testbed, tmp_path_factory.mktemp("stack"), unique_name("gate"))
    try:
        yield built.up()
    finally:
        built.down()


def gate(stack: Stack, window: float = 6, **extra) -> dict:
    args = {
        "baseline": "api_blue",
        "canary": "api_green",
        "window": window,
        "sources": {
            "haproxy_stats": {"socket": stack.socket, "backend": "be_api"},
            "haproxy_log": {"container": stack.lb_container},
        },
        "min_requests": 100,
        "min_samples": 50,
        "max_p95_ms": 200,
        "fail_on": "never",
        **extra,
    }
    return run_module("canary_gate", args, timeout=120)


def gate_under_load(stack: Stack, rate: float, connections: int = 4, **extra) -> dict:
    load = Load(stack.url + "/", rate=rate, seconds=8, connections=connections).start()
    time.sleep(0.5)
    try:
        return gate(stack, **extra)
    finally:
        load.join()


def by_name(result: dict) -> dict:
    return {m["metric"]: m for m in result["metrics"]}


def test_healthy_colors_under_load_promote(stack: Stack) -> None:
    shift(stack, 128, 128)
    result = gate_under_load(stack, rate=120)
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "promote", result["metrics"]
    metrics = by_name(result)
    assert metrics["error_rate"]["canary_n"] >= 100 and metrics["error_rate"]["baseline_n"] >= 100
    assert metrics["error_rate_increase"]["test"] == "fisher_exact (one-sided)"
    assert metrics["p95_ms"]["source"] == "haproxy_log"
    assert result["changed"] is False


def test_a_failing_canary_at_ten_percent_is_rolled_back_naming_the_error_metric(stack: Stack) -> None:
    stack.deploy("green", "v2", DEMO_FAIL_RATE="0.05")
    stack.wait_status({"api_green": "UP"}, seconds=60)
    try:
        shift(stack, 230, 26)
        result = gate_under_load(stack, rate=200, window=7, fail_on="rollback")
    finally:
        stack.deploy("green", "v2")
        stack.wait_status({"api_green": "UP"}, seconds=60)
    assert result["failed"] and result["verdict"] == "rollback"
    assert "error_rate" in result["msg"]
    failing = {m["metric"] for m in result["metrics"] if m["status"] == "fail"}
    assert "error_rate" in failing, result["metrics"]


def test_a_slow_canary_is_rolled_back_on_p95_from_the_log(stack: Stack) -> None:
    stack.deploy("green", "v2", DEMO_EXTRA_LATENCY_MS="300")
    stack.wait_status({"api_green": "UP"}, seconds=60)
    try:
        shift(stack, 128, 128)
        result = gate_under_load(stack, rate=60, connections=12)
    finally:
        stack.deploy("green", "v2")
        stack.wait_status({"api_green": "UP"}, seconds=60)
    assert result["verdict"] == "rollback", result["metrics"]
    p95 = by_name(result)["p95_ms"]
    assert p95["status"] == "fail" and p95["source"] == "haproxy_log" and p95["canary"] >= 300
    assert by_name(result)["latency_ratio"]["test"] == "mann_whitney_u (one-sided)"


def lb_source(stack: Stack) -> dict:
    """The source the canary role uses: one route of the LB, through the LB interface (colors)."""
    return {"lb": {"dir": str(stack.lb_dir), "container": stack.lb_container, "route": "api"}}


def test_the_lb_source_judges_colors_through_the_lb_interface(stack: Stack) -> None:
    shift(stack, 128, 128)
    result = gate_under_load(stack, rate=120, baseline="blue", canary="green", sources=lb_source(stack))
    assert result["verdict"] == "promote", result["metrics"]
    metrics = by_name(result)
    assert {m["source"] for m in result["metrics"]} == {"lb"}
    assert metrics["error_rate"]["canary_n"] >= 100 and metrics["p95_ms"]["canary_n"] >= 50
    assert set(result["measurements"][0]["counts"]) == {"blue", "green"}


def test_the_lb_source_rolls_back_a_failing_color(stack: Stack) -> None:
    stack.deploy("green", "v2", DEMO_FAIL_RATE="0.05")
    stack.wait_status({"api_green": "UP"}, seconds=60)
    try:
        shift(stack, 230, 26)
        result = gate_under_load(
            stack, rate=200, window=7, baseline="blue", canary="green", sources=lb_source(stack), fail_on="rollback"
        )
    finally:
        stack.deploy("green", "v2")
        stack.wait_status({"api_green": "UP"}, seconds=60)
    assert result["failed"] and result["verdict"] == "rollback" and "error_rate" in result["msg"], result["metrics"]


def test_real_and_synthetic_requests_are_told_apart_in_the_lb_log(stack: Stack) -> None:
    """At a 10 % step the canary has few real requests and as many synthetic ones as the baseline: its
    error rate is judged on the synthetic requests of both colors, its latency on the real ones (enough of
    both), each metric saying which; the LB's log (the lb role's format) splits the counts."""
    shift(stack, 230, 26)
    result = gate_under_load(
        stack,
        rate=120,
        baseline="blue",
        canary="green",
        min_requests=200,
        min_samples=30,
        sources={**lb_source(stack), "synthetic": {"url": stack.url, "rate": 40}},
    )
    metrics = by_name(result)
    assert metrics["error_rate"]["sample"] == "synthetic", metrics["error_rate"]
    assert metrics["error_rate"]["canary_n"] == result["figures"]["canary"]["synthetic_requests"]
    assert metrics["latency_ratio"]["sample"] == "real", metrics["latency_ratio"]
    assert metrics["latency_ratio"]["canary_n"] == result["figures"]["canary"]["real_requests"]
    for side in ("baseline", "canary"):
        figures = result["figures"][side]
        assert figures["real_requests"] + figures["synthetic_requests"] == figures["requests"], figures
        # The log read for the window may miss a few lines at its edges (docker's timestamps), never add some.
        assert 0.9 * figures["synthetic_answered"] <= figures["synthetic_requests"] <= figures["synthetic_answered"]
    assert result["figures"]["baseline"]["real_requests"] > 5 * result["figures"]["canary"]["real_requests"]


def test_the_lb_source_takes_colors_not_server_names(stack: Stack) -> None:
    result = gate(stack, window=0.1, sources=lb_source(stack))  # baseline api_blue: a server name
    assert result["failed"] and "with sources.lb they are colors" in result["msg"], result["msg"]


def test_no_traffic_holds(stack: Stack) -> None:
    shift(stack, 128, 128)
    result = gate(stack, window=2)
    assert result["verdict"] == "hold"
    assert by_name(result)["error_rate"]["status"] == "inconclusive"


def test_too_few_canary_requests_hold(stack: Stack) -> None:
    shift(stack, 255, 1)
    result = gate_under_load(stack, rate=100)
    assert result["verdict"] == "hold", result["metrics"]
    assert "too little traffic" in by_name(result)["error_rate"]["reason"]


def test_a_reload_during_the_window_discards_it(stack: Stack) -> None:
    shift(stack, 128, 128)
    reload = threading.Timer(1.5, lambda: docker("kill", "--signal", "USR2", stack.lb_container))
    reload.start()
    result = gate_under_load(stack, rate=100, window=4)
    reload.join()
    assert result["verdict"] == "hold"
    assert result["counter_resets"] and "reload" in result["counter_resets"][0]
    assert by_name(result)["counters"]["status"] == "inconclusive"


def test_an_lb_restarted_during_the_window_discards_it_and_the_next_window_judges(stack: Stack) -> None:
    """The LB container goes down during the window (its sockets refuse): the window is discarded as
    inconclusive, naming the LB, instead of failing the gate; once it is back, the next window judges.
    (A restart fast enough to answer the end snapshot is caught as a counter reset instead.)"""
    shift(stack, 128, 128)
    stop = threading.Timer(1.0, lambda: docker("stop", "--time", "1", stack.lb_container))
    stop.start()
    try:
        result = gate_under_load(stack, rate=100, window=4, baseline="blue", canary="green", sources=lb_source(stack))
    finally:
        stop.join()
        docker("start", stack.lb_container)
    assert result["verdict"] == "hold", result
    counters = by_name(result)["counters"]
    assert counters["status"] == "inconclusive" and "the LB did not answer" in counters["reason"], counters
    assert result["unobserved"], "a window nothing could be seen in is flagged: no hold policy promotes it"
    stack.wait_status({"api_blue": "UP", "api_green": "UP"})
    again = gate_under_load(stack, rate=120, baseline="blue", canary="green", sources=lb_source(stack))
    assert again["verdict"] == "promote", again["metrics"]


# -- names sent to HAProxy, and the read-only socket ----------------------------------------------------
ATTACK = "be_api; set server be_api/api_green state maint"
NAME_RULE = "1 to 128 of the characters A-Z a-z 0-9 _ . : -"


def cli(path: str, line: str) -> str:
    """One line to a Runtime API socket, as anyone who can open it would send it (socat)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("source", ["haproxy_stats", "lb"])
def test_a_name_carrying_a_second_command_is_refused_before_anything_is_sent(stack: Stack, source: str) -> None:
    """The attack of issue 14, on the admin socket with green live: before, HAProxy ran the second command
    (`show stat be_api; set server ...`) and every user got 503."""
    shift(stack, 0, 256)
    if source == "haproxy_stats":
        names = {"sources": {"haproxy_stats": {"socket": stack.socket, "backend": ATTACK}}}
        parameter = f"sources.haproxy_stats.backend={ATTACK!r}"
    else:
        route = "api; set server be_api/api_green state maint"
        names = {"baseline": "blue", "canary": "green", "sources": {"lb": {**lb_source(stack)["lb"], "route": route}}}
        parameter = f"sources.lb.route: {route!r}"
    result = gate(stack, window=0.1, **names)
    assert result["failed"] and parameter in result["msg"] and NAME_RULE in result["msg"], result["msg"]
    assert "measurements" not in result
    green = stack.servers()["api_green"]  # show servers state and show stat, on the admin socket
    assert (green["state"], green["weight"], green["up"]) == ("ready", 256, True), green
    assert stack.colors(20) == {"green": 20}


def test_the_gate_judges_through_the_read_only_socket_which_refuses_writes(stack: Stack) -> None:
    """The lb role's status.sock (level user) is all the gate needs; HAProxy itself refuses a change through it."""
    shift(stack, 128, 128)
    status = str(stack.lb_dir / "run" / "status.sock")
    assert cli(status, "show cli level").strip() == "user"
    result = gate(stack, window=1, sources={"haproxy_stats": {"socket": status, "backend": "be_api"}})
    assert not result.get("failed"), result.get("msg")
    counts = result["measurements"][0]["counts"]
    assert counts["api_green"]["status"].startswith("UP") and counts["api_blue"]["status"].startswith("UP"), counts
    assert not result["counter_resets"] and not result["unobserved"]
    before = stack.servers()
    assert cli(status, "set server be_api/api_green state maint").strip() == "Permission denied"
    assert cli(status, "set weight be_api/api_green 1").strip() == "Permission denied"
    after = stack.servers()
    assert {n: (s["weight"], s["state"]) for n, s in after.items()} == {
        n: (s["weight"], s["state"]) for n, s in before.items()
    }


def test_the_lb_source_needs_no_admin_socket_and_falls_back_to_the_master_cli(stack: Stack) -> None:
    """The canary role's source reads through status.sock; with that gone too, through the master CLI."""
    shift(stack, 128, 128)
    run = stack.lb_dir / "run"
    moved = []
    try:
        for name in ("admin.sock", "status.sock"):
            os.rename(run / name, run / f"{name}.away")
            moved.append(name)
            result = gate(stack, window=1, baseline="blue", canary="green", sources=lb_source(stack))
            assert not result.get("failed") and not result["unobserved"], (name, result.get("msg"), result)
            assert set(result["measurements"][0]["counts"]) == {"blue", "green"}
    finally:
        for name in moved:
            os.rename(run / f"{name}.away", run / name)


def test_check_mode_observes_and_judges_like_a_run(stack: Stack) -> None:
    """The Check job type of AWX runs the gate with --check: it must still give a real verdict."""
    shift(stack, 128, 128)
    load = Load(stack.url + "/", rate=120, seconds=8).start()
    time.sleep(0.5)
    try:
        args = {
            "baseline": "api_blue",
            "canary": "api_green",
            "window": 6,
            "fail_on": "never",
            "min_requests": 100,
            "sources": {"haproxy_stats": {"socket": stack.socket, "backend": "be_api"}},
        }
        result = run_module("canary_gate", args, check=True, timeout=120)
    finally:
        load.join()
    assert result["verdict"] == "promote" and result["changed"] is False, result["metrics"]
    assert {m["source"] for m in result["metrics"]} == {"haproxy_stats"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sources": {}}, "sources: unknown none, given none"),
        ({"sources": {"graphite": {}}}, "sources.graphite"),
        ({"confidence": 2}, "confidence=2.0: use a probability between 0.5 and 1"),
        ({"window": 0}, "window=0.0 must be > 0 seconds"),
        ({"fail_on": "always"}, "value of fail_on must be one of: rollback, never"),
    ],
)
def test_bad_input_is_named(extra: dict, message: str) -> None:
    args = {"baseline": "a", "canary": "b", "window": 1, "sources": {"http_probe": {"url": "http://127.0.0.1:9/"}}}
    result = run_module("canary_gate", {**args, **extra})
    assert result["failed"] and message in result["msg"], result["msg"]


def test_http_probes_through_the_lb_with_the_canary_header(stack: Stack) -> None:
    shift(stack, 256, 0)
    probe = {"url": stack.url + "/", "headers": {"X-Canary": "1"}, "count": 20, "max_latency_ms": 1000}
    args = {
        "baseline": "api_blue",
        "canary": "api_green",
        "window": 0.1,
        "fail_on": "never",
        "sources": {"http_probe": probe},
    }
    result = run_module("canary_gate", args)
    assert result["verdict"] == "promote", result["metrics"]
    assert "20/20 probes answered 200" in result["metrics"][0]["reason"]
    missing = run_module("canary_gate", {**args, "sources": {"http_probe": {**probe, "url": stack.url + "/nope"}}})
    assert missing["verdict"] == "rollback" and "0/20 probes answered 200" in missing["metrics"][0]["reason"]


def test_a_probe_answered_by_the_wrong_server_fails_the_smoke(stack: Stack) -> None:
    """expect_header: X-Canary names green, so every answer must come from api_green; asking for blue's
    server fails, naming the header and what answered."""
    shift(stack, 256, 0)
    probe = {"url": stack.url + "/", "headers": {"X-Canary": "green"}, "count": 5}
    args = {"baseline": "api_blue", "canary": "api_green", "window": 0.05, "fail_on": "never"}
    right = run_module(
        "canary_gate",
        {
            **args,
            "sources": {
                "http_probe": {**probe, "expect_header": {"name": "X-Switchyard-Server", "pattern": "_green$"}}
            },
        },
    )
    assert right["verdict"] == "promote", right["metrics"]
    wrong = run_module(
        "canary_gate",
        {
            **args,
            "sources": {"http_probe": {**probe, "expect_header": {"name": "X-Switchyard-Server", "pattern": "_blue$"}}},
        },
    )
    assert wrong["verdict"] == "rollback", wrong["metrics"]
    assert (
        "5 answered with X-Switchyard-Server" in wrong["metrics"][0]["reason"]
        and "_blue$" in wrong["metrics"][0]["reason"]
    )


# -- every route over one window ---------------------------------------------------------------------
WEB_ROUTE = {"name": "web", "port": 8000, "health_path": "/health", "path_prefix": "/items"}


def web_color(stack: Stack, color: str, version: str, **env: str) -> dict:
    """The demo app as the service `web` of project <app>-web<color>, reached by HAProxy as web-<color>."""
    directory = stack.workdir / "web"
    directory.mkdir(exist_ok=True)
    base = (DEMO_DIR / "compose.base.yaml").read_text()
    compose = directory / "compose.web.yaml"
    compose.write_text(
        base.replace("\n  api:\n", "\n  web:\n").replace("- api-${SWITCHYARD_COLOR", "- web-${SWITCHYARD_COLOR")
    )
    env_file = directory / f"{color}.env"
    variables = {"SWITCHYARD_APP": stack.app, "SWITCHYARD_COLOR": color, "DEMO_SECRETS_DIR": str(stack.secrets), **env}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    result = run_module(
        "compose_project",
        {
            "project": f"{stack.app}-web{color}",
            "files": [str(compose)],
            "env_files": [str(env_file)],
            "images": {"web": stack.testbed.image(f"demo-app:{version}")},
            "wait_timeout": 60,
        },
    )
    assert not result.get("failed"), result.get("msg")
    return result


def set_web_weights(stack: Stack, blue: int, green: int) -> None:
    """Weights of be_web, once both its servers are UP."""
    deadline = time.monotonic() + 60
    while True:
        servers = run_module("haproxy_weight", {"socket": stack.socket, "backend": "be_web"})["after"]
        if all(str(servers[f"web_{c}"]["status"]).startswith("UP") for c in ("blue", "green")):
            break
        assert time.monotonic() < deadline, f"be_web's servers are not UP: {servers}"
        time.sleep(0.5)
    result = run_module(
        "haproxy_weight",
        stack.weights(
            backend="be_web",
            weights={"web_blue": blue, "web_green": green},
            states={"web_blue": "ready", "web_green": "ready"},
        ),
    )
    assert not result.get("failed"), result.get("msg")


@pytest.fixture(scope="module")
def two_routes(stack: Stack) -> Iterator[Stack]:
    """The stack with a second route, web (/items), whose green canary answers 10 % of its requests 500."""
    stack.lb_role(switchyard_lb_routes=[{"name": "api", "port": 8000, "health_path": "/health"}, WEB_ROUTE])
    try:
        web_color(stack, "blue", "v1")
        web_color(stack, "green", "v2", DEMO_FAIL_RATE="0.1")
        yield stack
    finally:
        for color in ("blue", "green"):
            ComposeProject(f"{stack.app}-web{color}", []).down()


def test_every_route_is_judged_over_one_window_and_the_failing_route_is_named(two_routes: Stack) -> None:
    """api's canary is healthy, web's fails: one call, one window, both routes judged - rollback, naming web."""
    stack = two_routes
    shift(stack, 128, 128)
    set_web_weights(stack, 128, 128)
    loads = [Load(stack.url + path, rate=100, seconds=9).start() for path in ("/", "/items?limit=5")]
    time.sleep(0.5)
    try:
        started = time.monotonic()
        result = gate(
            stack,
            window=6,
            baseline="blue",
            canary="green",
            sources={"lb": {"dir": str(stack.lb_dir), "container": stack.lb_container, "routes": ["api", "web"]}},
            fail_on="rollback",
        )
        took = time.monotonic() - started
    finally:
        for load in loads:
            load.join()
    assert result["failed"] and result["verdict"] == "rollback", result.get("metrics")
    assert "route web: error_rate" in result["msg"] and "route api" not in result["msg"], result["msg"]
    routes = {r["route"]: r for r in result["routes"]}
    assert result["routes"][0]["route"] == "web" and routes["web"]["verdict"] == "rollback"
    assert "error_rate" in routes["web"]["not_passed"]
    assert routes["api"]["verdict"] == "promote", [m for m in result["metrics"] if m["route"] == "api"]
    assert result["reason"].startswith("route web: rollback")
    # Per-route figures: each route's own requests, in the same window.
    by_route = {(m["route"], m["metric"]): m for m in result["metrics"]}
    assert by_route[("web", "error_rate")]["status"] == "fail" and by_route[("web", "error_rate")]["canary"] > 0.01
    assert by_route[("api", "error_rate")]["status"] == "pass"
    assert by_route[("api", "error_rate")]["canary_n"] >= 100 and by_route[("web", "error_rate")]["canary_n"] >= 100
    (measurement,) = result["measurements"]
    assert set(measurement["counts"]) == {"api", "web"} and set(measurement["counts"]["web"]) == {"blue", "green"}
    assert took < 6 * 2, f"one window for both routes, not one per route: {took:.1f} s"
