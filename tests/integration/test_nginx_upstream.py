"""switchyard.release.nginx_upstream and the Nginx backend against a real Nginx (the lb role with
switchyard_lb_kind nginx, the testbed image: Debian's nginx 1.22) in front of the real demo colors (blue v1,
green v2). A second route, `ghost`, has no color deployed: Nginx starts and reloads all the same."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from support.compose import docker
from support.lb_kinds import UNTRUSTED_CLIENT, backend, kind_stack
from support.modules import four_way, run_module
from support.stack import Stack
from support.testbed import Testbed

from ansible_collections.switchyard.release.plugins.module_utils.common.files import write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBUnreachable
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.config import parse, render


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    yield from kind_stack(testbed, tmp_path_factory, "nginx")


@pytest.fixture
def lb(stack: Stack) -> Stack:
    """All traffic on blue, both colors ready, whatever the last test did."""
    result = run_module("nginx_upstream", stack.nginx(weights={"blue": 256, "green": 0}, states=ready()))
    assert not result.get("failed"), result.get("msg")
    return stack


def ready() -> dict:
    return {"blue": "ready", "green": "ready"}


def routes_conf(lb: Stack) -> str:
    return (lb.lb_dir / "etc" / "routes.conf").read_text()


def held(lb: Stack, route: str = "api") -> dict:
    """{color: (weight, state)} as the file holds them."""
    entry = next(r for r in parse(routes_conf(lb))["routes"] if r["name"] == route)
    return {c: (entry["weights"][c], entry["states"][c]) for c in ("blue", "green")}


def answers(lb: Stack, count: int, value: str | None = None) -> list[tuple[str, str | None]]:
    """(color, X-Switchyard-Server) of count requests from the Docker host (trusted), with X-Canary: value."""
    seen = []
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(lb.url + "/", headers={"X-Canary": value} if value else {}, timeout=5)
            seen.append((resp.json()["color"], resp.headers.get("X-Switchyard-Server")))
    return seen


def test_weights_four_ways_read_back_and_split(lb: Stack) -> None:
    check, apply, check_again, apply_again = four_way("nginx_upstream", lb.nginx(weights={"blue": 26, "green": 230}))
    for r in (check, apply, check_again, apply_again):
        assert not r.get("failed"), r.get("msg")
    assert check["changed"] and apply["changed"] and check["commands"] == apply["commands"]
    assert apply["commands"] == ["set api/green weight 230", "set api/blue weight 26"]
    assert not check_again["changed"] and not apply_again["changed"] and apply_again["commands"] == []
    assert apply["shares"] == {"blue": 10.16, "green": 89.84} and apply["method"] == "reload"
    assert apply["before"]["blue"]["weight"] == 256 and apply["after"]["green"]["weight"] == 230
    assert apply["after"]["green"]["status"] == "UP" and apply["after"]["green"]["addresses"]
    assert apply["generation"] in routes_conf(lb) and "89.84% green;" in routes_conf(lb)
    assert held(lb) == {"blue": (26, "ready"), "green": (230, "ready")}
    seen = [color for color, _server in answers(lb, 200)]
    assert 150 <= seen.count("green") <= 198, seen.count("green")  # 89.84 % of a random split
    assert apply_again["after"] == {**apply_again["before"]}


def test_weight_zero_drain_and_maint_and_who_still_reaches_green(lb: Stack) -> None:
    # Weight 0 (the fixture): nobody but the header reaches green, and it is told the server.
    assert answers(lb, 30) == [("blue", None)] * 30
    assert answers(lb, 5, "green") == [("green", "api_green")] * 5
    check, apply, check_again, apply_again = four_way("nginx_upstream", lb.nginx(states={"green": "drain"}))
    assert check["changed"] and apply["changed"] and not check_again["changed"] and not apply_again["changed"]
    assert apply["after"]["green"]["status"] == "DRAIN" and apply["commands"] == ["set api/green state drain"]
    assert answers(lb, 5, "green") == [("green", "api_green")] * 5
    result = run_module("nginx_upstream", lb.nginx(states={"green": "maint"}, drain_timeout=5))
    assert result["changed"] and result["after"]["green"]["status"] == "MAINT" and not result["after"]["green"]["up"]
    # In maint even the header does not reach it: the request is split (all blue), no server named.
    assert answers(lb, 5, "green") == [("blue", None)] * 5
    assert held(lb) == {"blue": (256, "ready"), "green": (0, "maint")}
    # Leaving maint with weight: lifted, then it takes traffic.
    lifted = run_module("nginx_upstream", lb.nginx(weights={"blue": 128, "green": 128}, states=ready()))
    assert lifted["commands"] == ["set api/green state ready", "set api/green weight 128", "set api/blue weight 128"]
    assert {color for color, _server in answers(lb, 40)} == {"blue", "green"}


def test_header_canary_follows_the_candidate_for_trusted_sources_only(lb: Stack) -> None:
    traffic = {
        "app": lb.app,
        "path": str(lb.workdir / "state"),
        "lb": {"kind": "nginx", "dir": str(lb.lb_dir), "container": lb.lb_container},
        "routes": ["api"],
        "canary": "green",
    }
    check, apply, check_again, apply_again = four_way("traffic", traffic)
    assert check["changed"] and apply["changed"] and not check_again["changed"] and not apply_again["changed"]
    assert apply["canary"]["after"] == "green" and parse(routes_conf(lb))["canary"] == "green"
    assert answers(lb, 10, "1") == [("green", "api_green")] * 10
    assert answers(lb, 5, "blue") == [("blue", "api_blue")] * 5
    assert answers(lb, 5, "purple") == [("blue", None)] * 5
    out = docker(
        "run", "--rm", "--network", f"{lb.app}_public", "--entrypoint", "python3", lb.testbed.pinned("demo-app:v1"),
        "-c", UNTRUSTED_CLIENT, f"http://{lb.lb_container}:8080/", "1", "green",
    )  # fmt: skip
    for value, seen in json.loads(out.stdout).items():
        assert seen == [{"color": "blue", "server": None}] * 5, (value, seen)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"route": "api;x"}, "route='api;x' is not a route name"),
        ({"route": "nope"}, "route='nope' is not a route of this Nginx; it has: api, ghost"),
        ({"weights": {"blue": 300}}, "weights.blue=300: a weight is an integer from 0 to 256"),
        ({"states": {"green": "off"}}, "value of green must be one of: ready, drain, maint, got: off found in states"),
        ({"route": "ghost", "weights": {"green": 10}}, "weights.green: route ghost, color green is DOWN"),
        ({"weights": {"blue": 0}}, "route api would have zero total weight"),
    ],
)
def test_refusals_name_the_parameter_and_change_nothing(lb: Stack, args: dict, message: str) -> None:
    before = routes_conf(lb)
    result = run_module("nginx_upstream", lb.nginx(**args))
    assert result.get("failed") and message in result["msg"], result.get("msg")
    assert routes_conf(lb) == before


def test_an_invalid_configuration_is_refused_and_the_old_one_keeps_serving(lb: Stack) -> None:
    main = lb.lb_dir / "etc" / "nginx.conf"
    good, before = main.read_text(), routes_conf(lb)
    main.write_text(good.replace("include routes.conf;", "include routes.conf;\n    no_such_directive on;"))
    try:
        result = run_module("nginx_upstream", lb.nginx(weights={"blue": 128, "green": 128}))
    finally:
        main.write_text(good)
    assert result.get("failed"), result
    assert 'unknown directive "no_such_directive"' in result["msg"] and "previous routes.conf is back" in result["msg"]
    assert routes_conf(lb) == before
    assert answers(lb, 20) == [("blue", None)] * 20


def test_a_container_stopped_after_the_write_leaves_the_previous_file_and_nginx_agrees(lb: Stack) -> None:
    before = routes_conf(lb)
    calls: list[int] = []

    def stop_before_the_reload() -> None:  # the second guard: after nginx -t passed, before nginx -s reload
        calls.append(1)
        if len(calls) == 2:
            docker("stop", "--time", "5", lb.lb_container)

    try:
        with pytest.raises(LBUnreachable) as caught:
            backend(lb).shift("api", {"blue": 128, "green": 128}, {}, guard=stop_before_the_reload)
    finally:
        docker("start", lb.lb_container)
    assert "previous routes.conf is back in place, but reloading it failed too" in caught.value.msg, caught.value.msg
    assert routes_conf(lb) == before
    servers = lb.wait_nginx({"blue": "UP", "green": "UP"})
    assert {c: (s["weight"], s["loaded"]) for c, s in servers.items()} == {"blue": (256, True), "green": (0, True)}
    assert answers(lb, 10) == [("blue", None)] * 10


def test_a_file_nginx_never_loaded_is_reported_and_the_rerun_reloads_it(lb: Stack) -> None:
    # What a writer that died between its write and its reload leaves: a routes.conf Nginx does not serve.
    state = parse(routes_conf(lb))
    served = state["generation"]
    for route in state["routes"]:
        if route["name"] == "api":
            route["weights"] = {"blue": 0, "green": 256}
    path = str(lb.lb_dir / "etc" / "routes.conf")
    write_atomically(path, render({**state, "generation": "never-loaded-1"}), like=path)
    servers = backend(lb).servers("api")
    assert servers["green"]["weight"] == 256 and not servers["green"]["loaded"] and not servers["blue"]["loaded"]
    assert answers(lb, 10) == [("blue", None)] * 10  # Nginx still serves the file before
    result = run_module("nginx_upstream", lb.nginx(weights={"blue": 0, "green": 256}))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and result["commands"] == [
        f"reload routes.conf (generation never-loaded-1; Nginx serves {served})"
    ]
    assert all(s["loaded"] for s in result["after"].values()) and not result["before"]["green"]["loaded"]
    assert answers(lb, 10) == [("green", None)] * 10
    again = run_module("nginx_upstream", lb.nginx(weights={"blue": 0, "green": 256}))
    assert not again["changed"] and all(s["loaded"] for s in again["after"].values())


def test_two_writers_at_once_lose_no_change(lb: Stack) -> None:
    # The weights of api and the canary candidate, by two backends at once: each under the lock, both kept.
    errors: list[BaseException] = []

    def write(change) -> None:
        try:
            change(backend(lb))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(lambda nginx: nginx.shift("api", {"blue": 128, "green": 128}, {}),)),
        threading.Thread(target=write, args=(lambda nginx: nginx.set_canary("green"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = parse(routes_conf(lb))
    assert state["canary"] == "green" and held(lb) == {"blue": (128, "ready"), "green": (128, "ready")}
    assert all(s["loaded"] for s in backend(lb).servers("api").values())


def test_a_restart_of_the_container_keeps_the_weights(lb: Stack) -> None:
    run_module("nginx_upstream", lb.nginx(weights={"blue": 0, "green": 256}))
    docker("restart", "--time", "5", lb.lb_container)
    servers = lb.wait_nginx({"blue": "UP", "green": "UP"})
    assert {c: s["weight"] for c, s in servers.items()} == {"blue": 0, "green": 256}
    assert answers(lb, 20) == [("green", None)] * 20


def test_request_samples_and_log_see_real_requests_apart_from_synthetic(lb: Stack) -> None:
    run_module("nginx_upstream", lb.nginx(weights={"blue": 128, "green": 128}))
    time.sleep(0.1)
    since = datetime.datetime.now(datetime.UTC)
    with requests.Session() as session:
        colors = [session.get(lb.url + "/", timeout=5).json()["color"] for _request in range(40)]
        for color in ("blue", "green"):
            for _synthetic in range(3):
                session.get(lb.url + "/?switchyard-synthetic=1", headers={"X-Canary": color}, timeout=5)
        ghost = session.get(lb.url + "/ghost/x", timeout=5).status_code
    assert ghost == 502  # the ghost route's colors are not deployed: no name, yet Nginx runs
    time.sleep(1.2)
    until = datetime.datetime.now(datetime.UTC)
    nginx = backend(lb)
    samples = nginx.request_samples("api", since, until)
    for color in ("blue", "green"):
        assert samples[color].real.requests == colors.count(color), color
        assert samples[color].synthetic.requests == 3 and samples[color].errors == 0
        assert samples[color].real.latencies_ms and max(samples[color].real.latencies_ms) < 1000
    records = nginx.request_log(["api", "ghost"], since, until)
    assert [r[2] for r in records if r[1] == "api"] == colors
    assert [(r[1], r[3]) for r in records if r[1] == "ghost"] in ([("ghost", 502)], [])
    limited = nginx.request_log(["api"], since, until, max_records=5)
    assert len(limited) == 5 and nginx.request_log_dropped == len(colors) - 5
    counters = nginx.counters("api", ["blue", "green"])
    assert counters["servers"]["green"]["status"] == "UP" and counters["pid"]
    assert nginx.control_level()["admin"] and nginx.validate_config()["valid"]


def test_no_request_fails_while_the_weights_shift_under_load(lb: Stack) -> None:
    failures: list[str] = []
    done = {"requests": 0}
    stop = threading.Event()

    def load(keepalive: bool) -> None:
        session = requests.Session() if keepalive else None
        while not stop.is_set():
            try:
                resp = (session or requests).get(lb.url + "/", timeout=5)
                if resp.status_code != 200:
                    failures.append(f"HTTP {resp.status_code}")
            except requests.RequestException as exc:
                failures.append(repr(exc))
            done["requests"] += 1

    threads = [threading.Thread(target=load, args=(keepalive,)) for keepalive in (True, True, False)]
    for thread in threads:
        thread.start()
    nginx = backend(lb)
    try:
        for step in range(10):
            green = 26 * (step + 1) if step < 9 else 0
            nginx.shift("api", {"blue": 256 - green, "green": green}, {})
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert done["requests"] > 100 and failures == [], (done, failures[:5])


def test_lb_role_whose_reload_fails_puts_both_previous_files_back(lb: Stack) -> None:
    # The container paused: the role stages, validates and puts the new pair in place, then its reload fails for
    # real (docker exec refuses a paused container). Both files come back, and Nginx (never reloaded) agrees.
    etc = lb.lb_dir / "etc"
    main, routes = (etc / "nginx.conf").read_text(), routes_conf(lb)
    docker("pause", lb.lb_container)
    try:
        failed = lb.lb_role(check=False, switchyard_lb_sticky_cookie="sy_paused")
    finally:
        docker("unpause", lb.lb_container)
    assert failed.returncode != 0, failed.stdout
    assert "Put the previous configuration back (both files)" in failed.stdout, failed.stdout[-3000:]
    assert "the previous nginx.conf and routes.conf are back in place, but reloading them failed" in failed.stdout
    assert (etc / "nginx.conf").read_text() == main and routes_conf(lb) == routes
    assert all(s["loaded"] for s in backend(lb).servers("api").values())


def test_lb_role_rerun_changes_nothing_and_a_config_change_reloads_sticky(lb: Stack) -> None:
    run_module("nginx_upstream", lb.nginx(weights={"blue": 128, "green": 128}))
    rerun = lb.lb_role()
    assert "changed=0" in rerun.stdout.replace(" ", ""), rerun.stdout
    started = docker("inspect", "--format", "{{.State.StartedAt}}", lb.lb_container).stdout
    changed = lb.lb_role(switchyard_lb_sticky_cookie="sy_sticky", switchyard_lb_nginx_worker_shutdown_timeout="20s")
    assert "Reload Nginx for the new configuration" in changed.stdout
    assert "worker_shutdown_timeout 20s;" in (lb.lb_dir / "etc" / "nginx.conf").read_text()
    assert docker("inspect", "--format", "{{.State.StartedAt}}", lb.lb_container).stdout == started, "reloaded"
    assert held(lb) == {"blue": (128, "ready"), "green": (128, "ready")}
    # Sticky: a client without the cookie is given one, and with it stays on one color (at 50/50).
    for _client in range(6):
        with requests.Session() as session:
            first = session.get(lb.url + "/", timeout=5)
            assert first.cookies.get("sy_sticky"), first.headers
            colors = {session.get(lb.url + "/", timeout=5).json()["color"] for _request in range(10)}
            assert len(colors) == 1, colors
