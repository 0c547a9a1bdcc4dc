"""switchyard.release.haproxy_weight against a real HAProxy (the lb role, testbed image) in front
of real backends (the demo app, blue v1 and green v2)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from support.compose import docker, unique_name
from support.modules import four_way, run_module
from support.stack import Stack
from support.testbed import Testbed


@pytest.fixture(scope="module")
def stack(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    built = Stack(testbed, tmp_path_factory.mktemp("stack"), unique_name("lb"))
    try:
        yield built.up()
    finally:
        built.down()


@pytest.fixture
def lb(stack: Stack) -> Stack:
    """The stack with all traffic on blue and both servers ready, whatever the last test did."""
    result = run_module(
        "haproxy_weight",
        stack.weights(weights={"api_blue": 256, "api_green": 0}, states={"api_blue": "ready", "api_green": "ready"}),
    )
    assert not result.get("failed"), result.get("msg")
    stack.wait_status({"api_blue": "UP", "api_green": "UP"})
    return stack


def assert_four_way(results: list[dict]) -> None:
    check, apply, check_again, apply_again = results
    for r in results:
        assert not r.get("failed"), r.get("msg")
    assert check["changed"] and apply["changed"]
    assert check["commands"] == apply["commands"] and apply["commands"]
    assert check_again["changed"] is False and check_again["commands"] == []
    assert apply_again["changed"] is False and apply_again["commands"] == []


def test_weights_four_ways_raise_before_lower_and_persist(lb: Stack) -> None:
    args = lb.weights(weights={"api_blue": 26, "api_green": 230})
    results = four_way("haproxy_weight", args)
    assert_four_way(results)
    check, apply = results[0], results[1]
    assert check["after"]["api_green"]["weight"] == 230 and lb.servers()["api_green"]["weight"] == 230
    assert apply["commands"] == ["set weight be_api/api_green 230", "set weight be_api/api_blue 26"]
    assert apply["shares"] == {"api_blue": 10.16, "api_green": 89.84}
    assert apply["snapshot"]["weights"] == {"api_blue": 256, "api_green": 0}
    assert apply["persisted"] and apply["method"] == "runtime"
    config = open(lb.config).read()
    assert "server api_green api-green:8000 weight 230" in config
    assert "server api_blue api-blue:8000 weight 26" in config
    assert "be_api 2 api_green" in open(lb.state_file).read()
    # Check mode's diff shows the configuration file change too.
    assert any(d["before_header"] == "config" for d in check["diff"])


def test_states_four_ways_drain_then_maint(lb: Stack) -> None:
    assert_four_way(four_way("haproxy_weight", lb.weights(states={"api_green": "drain"})))
    assert lb.servers()["api_green"]["state"] == "drain"
    results = four_way("haproxy_weight", lb.weights(states={"api_green": "maint"}))
    assert_four_way(results)
    assert lb.servers()["api_green"]["state"] == "maint"
    # Admin states persist in the server-state file, not as `disabled` (which the Runtime API could
    # not lift later): a reload keeps green in maint.
    assert "server api_green api-green:8000 weight 0\n" in open(lb.config).read()
    docker("kill", "--signal", "USR2", lb.lb_container)
    deadline = time.monotonic() + 15
    while lb.servers()["api_blue"]["status"] != "UP":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert lb.servers()["api_green"]["state"] == "maint"


def test_weights_survive_a_reload(lb: Stack) -> None:
    result = run_module("haproxy_weight", lb.weights(weights={"api_blue": 128, "api_green": 128}))
    assert not result.get("failed"), result.get("msg")
    before_pid = result["before"] and docker("exec", lb.lb_container, "cat", "/proc/1/cmdline").stdout
    docker("kill", "--signal", "USR2", lb.lb_container)
    deadline = time.monotonic() + 15
    while True:
        servers = run_module("haproxy_weight", {"socket": lb.socket, "backend": "be_api"})
        if not servers.get("failed") and servers["after"]["api_green"]["status"] == "UP":
            break
        assert time.monotonic() < deadline, servers
        time.sleep(0.3)
    assert {n: s["weight"] for n, s in servers["after"].items()} == {"api_blue": 128, "api_green": 128}
    assert docker("exec", lb.lb_container, "cat", "/proc/1/cmdline").stdout == before_pid  # same master


def test_fallback_reload_when_the_socket_is_gone(lb: Stack) -> None:
    args = lb.weights(
        socket=str(lb.lb_dir / "run" / "gone.sock"),
        weights={"api_blue": 64, "api_green": 192},
        reload="fallback",
        reload_command=["docker", "kill", "--signal", "USR2", lb.lb_container],
        verify_socket=lb.master_socket,
        verify_prefix="@1 ",
    )
    check = run_module("haproxy_weight", args, check=True)
    assert check["changed"] and check["method"] == "reload" and "gone.sock" in check["socket_error"]
    assert lb.servers()["api_green"]["weight"] == 0
    result = run_module("haproxy_weight", args)
    assert not result.get("failed"), result.get("msg")
    assert result["method"] == "reload" and result["verified_through"] == lb.master_socket
    assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 64, "api_green": 192}
    again = run_module("haproxy_weight", args)
    assert again["changed"] is False


def test_fallback_carries_states_through_the_reload(lb: Stack) -> None:
    """maint goes into the server-state file, weights into the configuration: after the reload the
    new worker shows both (the check inside the fallback verifies it), and a second run changes nothing."""
    args = lb.weights(
        socket=str(lb.lb_dir / "run" / "gone.sock"),
        weights={"api_blue": 256, "api_green": 0},
        states={"api_green": "maint"},
        reload="fallback",
        reload_command=["docker", "kill", "--signal", "USR2", lb.lb_container],
        verify_socket=lb.master_socket,
        verify_prefix="@1 ",
    )
    result = run_module("haproxy_weight", args)
    assert not result.get("failed"), result.get("msg")
    assert result["method"] == "reload" and result["changed"]
    assert {n: (s["weight"], s["state"]) for n, s in lb.servers().items()} == {
        "api_blue": (256, "ready"),
        "api_green": (0, "maint"),
    }
    assert "be_api 2 api_green" in open(lb.state_file).read()
    again = run_module("haproxy_weight", args)
    assert not again.get("failed") and again["changed"] is False, again
    # And back to ready through the same path: the forced-maint bit leaves the file.
    back = run_module("haproxy_weight", {**args, "states": {"api_green": "ready"}})
    assert not back.get("failed"), back.get("msg")
    assert lb.servers()["api_green"]["state"] == "ready"


def test_fallback_without_any_socket_reads_the_files(lb: Stack) -> None:
    """Neither the admin socket nor the master CLI answers: what a reload would start with comes from
    the configuration and the server-state file; the change is verified once the admin socket answers."""
    args = lb.weights(
        socket=str(lb.lb_dir / "run" / "gone.sock"),
        weights={"api_blue": 128, "api_green": 128},
        reload="fallback",
        reload_command=["docker", "kill", "--signal", "USR2", lb.lb_container],
        verify_socket=str(lb.lb_dir / "run" / "gone-master.sock"),
    )
    check = run_module("haproxy_weight", args, check=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] and check["before"]["api_green"]["up"] is None, "read from the files"
    failed = run_module("haproxy_weight", args)
    # The reload happened, but nothing answers on the sockets it was told to verify through.
    assert failed["failed"] and "could not verify" in failed["msg"], failed
    assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 128, "api_green": 128}


def test_a_full_disk_after_the_weights_moved_is_reported_not_a_traceback(lb: Stack, tmp_path) -> None:
    """The Runtime API moved the weights, then the server-state file cannot be written (a full
    filesystem): the task fails saying what HAProxy shows and what to do, with changed=true."""
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={full / 'filler'}", "bs=4k"], capture_output=True, check=False)
        args = lb.weights(weights={"api_blue": 192, "api_green": 64})
        args["persist"] = {"config": lb.config, "state_file": str(full / "servers.state")}
        result = run_module("haproxy_weight", args)
    finally:
        subprocess.run(["umount", "--lazy", str(full)], check=False)
    assert result["failed"] and result["changed"] is True, result
    assert "HAProxy shows the change" in result["msg"] and "No space left on device" in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
    assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 192, "api_green": 64}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"weights": {"api_green": 300}}, "weights.api_green=300: a weight is an integer from 0 to 256"),
        ({"weights": {"api_green": -1}}, "weights.api_green=-1: a weight is an integer from 0 to 256"),
        ({"backend": "be_nope", "weights": {"api_green": 1}}, "backend='be_nope' is not a backend of this HAProxy"),
        ({"weights": {"api_red": 1}}, "unknown server(s) api_red in backend be_api; it has: api_blue, api_green"),
        ({"weights": {"api_blue": 0, "api_green": 0}}, "would have zero total weight"),
        ({"states": {"api_green": "paused"}}, "states.api_green='paused': allowed values are ready, drain, maint"),
        ({"reload": "sometimes"}, "value of reload must be one of: never, fallback, always"),
        # Names carrying a second Runtime API command (blue is live): refused before anything is sent.
        (
            {"backend": "be_api; set server be_api/api_blue state maint"},
            "backend='be_api; set server be_api/api_blue state maint' is not an HAProxy name: use 1 to 128 of the "
            "characters A-Z a-z 0-9 _ . : -",
        ),
        (
            {"weights": {"api_green 1;set server be_api/api_blue state maint;set weight be_api/api_green": 1}},
            "weights: 'api_green 1;set server be_api/api_blue state maint;set weight be_api/api_green' is not an "
            "HAProxy name",
        ),
    ],
)
def test_refusals_name_the_parameter_and_change_nothing(lb: Stack, args: dict, message: str) -> None:
    before = lb.servers()
    result = run_module("haproxy_weight", lb.weights(**args))
    assert result["failed"] and message in result["msg"], result["msg"]
    assert lb.servers() == before


def test_refusals_about_the_socket(lb: Stack) -> None:
    missing = run_module(
        "haproxy_weight", lb.weights(socket=str(lb.lb_dir / "run" / "none.sock"), weights={"api_green": 1})
    )
    assert missing["failed"] and "cannot connect to the HAProxy socket" in missing["msg"]
    user_level = run_module(
        "haproxy_weight", lb.weights(socket=str(lb.lb_dir / "run" / "status.sock"), weights={"api_green": 1})
    )
    assert user_level["failed"] and "has level 'user'" in user_level["msg"]


def test_refuses_weight_for_a_server_that_is_down(lb: Stack) -> None:
    docker("stop", "--time", "5", f"{lb.app}-green-api-1")
    try:
        # A stopped color is DOWN by its checks, or MAINT (resolution) once its name is gone from DNS.
        deadline = time.monotonic() + 30
        while lb.servers()["api_green"]["up"]:
            assert time.monotonic() < deadline, lb.servers()
            time.sleep(0.3)
        status = lb.servers()["api_green"]["status"]
        result = run_module("haproxy_weight", lb.weights(weights={"api_green": 10}))
        assert result["failed"] and f"server api_green is {status}" in result["msg"], result["msg"]
        assert "refusing to send it traffic" in result["msg"]
        assert lb.servers()["api_green"]["weight"] == 0
    finally:
        docker("start", f"{lb.app}-green-api-1")
        lb.wait_status({"api_green": "UP"}, seconds=60)


def test_shares_measured_through_the_lb_match_the_weights(lb: Stack) -> None:
    result = run_module("haproxy_weight", lb.weights(weights={"api_blue": 230, "api_green": 26}))
    assert not result.get("failed"), result.get("msg")
    seen = lb.colors(1000)
    assert seen["blue"] + seen["green"] == 1000, seen
    assert abs(seen["green"] / 10 - result["shares"]["api_green"]) <= 3, seen
    assert abs(seen["blue"] / 10 - result["shares"]["api_blue"]) <= 3, seen


def test_x_canary_reaches_green_at_weight_zero_but_never_in_maint(lb: Stack) -> None:
    # X-Canary: 1 reaches the candidate a release names (the traffic module's canary).
    where = {"dir": str(lb.lb_dir), "container": lb.lb_container}
    named = run_module("traffic", {"app": lb.app, "lb": where, "routes": ["api"], "canary": "green"})
    assert not named.get("failed"), named.get("msg")
    assert lb.colors(50) == {"blue": 50}
    assert lb.colors(50, headers={"X-Canary": "1"}) == {"green": 50}
    assert lb.colors(20, headers={"X-Canary": "blue"}) == {"blue": 20}
    result = run_module("haproxy_weight", lb.weights(states={"api_green": "maint"}))
    assert not result.get("failed"), result.get("msg")
    assert lb.colors(50, headers={"X-Canary": "1"}) == {"blue": 50}


def test_drain_waits_for_sessions_to_end(lb: Stack) -> None:
    """A slow request on green keeps a session open; drain waits for it, then maint."""
    run_module("haproxy_weight", lb.weights(weights={"api_blue": 0, "api_green": 256}))
    lb.deploy("green", "v2", DEMO_EXTRA_LATENCY_MS="2500")
    lb.wait_status({"api_green": "UP"}, seconds=60)
    try:
        answers: list[int] = []
        slow = threading.Thread(target=lambda: answers.append(requests.get(lb.url + "/", timeout=10).status_code))
        slow.start()
        time.sleep(0.5)
        result = run_module(
            "haproxy_weight",
            lb.weights(
                weights={"api_blue": 256, "api_green": 0},
                states={"api_green": "drain"},
                drain_timeout=10,
                maint_after_drain=True,
            ),
        )
        slow.join()
        assert not result.get("failed"), result.get("msg")
        assert answers == [200], "the in-flight request finished"
        assert result["drain"]["sessions_left"] == {} and 1.0 <= result["drain"]["waited"] < 10
        assert result["after"]["api_green"]["state"] == "maint"
    finally:
        lb.deploy("green", "v2")


def test_lb_role_rerun_changes_nothing_and_keeps_weights(lb: Stack) -> None:
    run_module("haproxy_weight", lb.weights(weights={"api_blue": 200, "api_green": 56}))
    rerun = lb.lb_role()
    assert "changed=0" in rerun.stdout.replace(" ", ""), rerun.stdout
    assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 200, "api_green": 56}


def test_lb_role_refuses_a_configuration_it_cannot_read_instead_of_resetting_the_weights(lb: Stack) -> None:
    """A configuration in place that does not parse (a server line broken by hand): the role fails naming
    it, and renders nothing - it used to start again from blue 256 / green 0, moving the live traffic."""
    run_module("haproxy_weight", lb.weights(weights={"api_blue": 64, "api_green": 192}))
    good = open(lb.config).read()
    broken = good.replace("server api_green api-green:8000 weight 192", "server api_green api-green:8000 weight")
    assert broken != good
    open(lb.config, "w").write(broken)
    try:
        result = lb.lb_role(check=False)
        assert result.returncode != 0, result.stdout
        assert "haproxy_servers" in result.stdout and "'weight' without a number" in result.stdout, result.stdout
        assert open(lb.config).read() == broken, "nothing rendered over it"
        assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 64, "api_green": 192}
    finally:
        open(lb.config, "w").write(good)


def test_lb_role_refuses_values_that_would_inject_directives_before_rendering(lb: Stack) -> None:
    """A path_prefix that closes its ACL and starts a line of its own, a log format that closes its quotes:
    refused by the role's first task, naming the variable and the characters allowed; haproxy.cfg is untouched."""
    config = open(lb.config).read()
    route = {"name": "api", "port": 8000, "health_path": "/health", "path_prefix": "/x }\n    use_backend be_evil"}
    result = lb.lb_role(check=False, switchyard_lb_routes=[route])
    assert result.returncode != 0, result.stdout
    assert "switchyard_lb_routes[0].path_prefix=" in result.stdout, result.stdout
    assert "is refused: use '/' then up to 255 of A-Z a-z 0-9" in result.stdout, result.stdout
    log_format = '%b/%s %ST %Tr %Ta"\n    http-request return status 200 content-type text/plain string "owned'
    result = lb.lb_role(check=False, switchyard_lb_log_format=log_format)
    assert result.returncode != 0 and "switchyard_lb_log_format=" in result.stdout, result.stdout
    assert open(lb.config).read() == config
    assert lb.colors(10) == {"blue": 10}


def test_lb_config_change_reloads_without_dropping_the_weights(lb: Stack) -> None:
    run_module("haproxy_weight", lb.weights(weights={"api_blue": 100, "api_green": 156}))
    lb.lb_role(switchyard_lb_timeout_server="31s")
    try:
        assert "timeout server 31s" in open(lb.config).read()
        assert {n: s["weight"] for n, s in lb.servers().items()} == {"api_blue": 100, "api_green": 156}
    finally:
        lb.lb_role()
