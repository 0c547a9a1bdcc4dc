"""What the LB exposes, against the testbed's HAProxy rendered by the lb role: the canary header only for
trusted clients (and stripped before any backend sees it from anyone else), X-Canary: 1 following the
candidate without a reload, the process and its sockets under a uid of their own, the configuration
validated in the pinned image.

The colors are header-echo servers (python3 in the demo image) that answer with their color and the
request headers they received, so what reaches a backend is seen, not assumed. The untrusted client is
a container on <app>_public (what any client HAProxy does not trust is, to it: another source address).
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.compose import docker, unique_name
from support.modules import four_way, run_module
from support.stack import Stack
from support.testbed import Testbed

ECHO = """
import http.server, json, os
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"color": os.environ["COLOR"], "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8000), Echo).serve_forever()
"""

# Run in a container on <app>_public: each header value, a few requests, what came back.
CLIENT = """
import json, sys, urllib.request
out = {}
for value in sys.argv[2:]:
    seen = []
    for _ in range(5):
        request = urllib.request.Request(sys.argv[1], headers={"X-Canary": value})
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.loads(resp.read())
            seen.append({"color": body["color"], "server": resp.headers.get("X-Switchyard-Server"),
                         "received": sorted(k.lower() for k in body["headers"])})
    out[value] = seen
print(json.dumps(out))
"""

LB_UID = 60099  # the lb role's default switchyard_lb_uid / switchyard_lb_gid


@pytest.fixture(scope="module")
def lb(testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(testbed, tmp_path_factory.mktemp("exposure"), unique_name("expo"))
    stack.started = time.time()
    try:
        stack.lb_role()
        for color in ("blue", "green"):
            docker(
                "run", "--detach", "--name", f"{stack.app}-echo-{color}", "--network", f"{stack.app}_edge",
                "--network-alias", f"api-{color}", "--env", f"COLOR={color}", "--entrypoint", "python3",
                testbed.pinned("demo-app:v1"), "-c", ECHO,
            )  # fmt: skip
        stack.wait_status({"api_blue": "UP", "api_green": "UP"})
        yield stack
    finally:
        for color in ("blue", "green"):
            docker("rm", "--force", f"{stack.app}-echo-{color}", check=False)
        stack.down()


def through_lb(lb: Stack, value: str, count: int = 5) -> list[dict]:
    """Requests from the Docker host (a trusted source by default) with X-Canary: value."""
    seen = []
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(lb.url + "/", headers={"X-Canary": value}, timeout=5)
            body = resp.json()
            seen.append(
                {
                    "color": body["color"],
                    "server": resp.headers.get("X-Switchyard-Server"),
                    "canary_received": {k.lower(): v for k, v in body["headers"].items()}.get("x-canary"),
                }
            )
    return seen


def from_untrusted(lb: Stack, *values: str) -> dict:
    """The same from a container on <app>_public, to HAProxy's own address there."""
    out = docker(
        "run", "--rm", "--network", f"{lb.app}_public", "--entrypoint", "python3", lb.testbed.pinned("demo-app:v1"),
        "-c", CLIENT, f"http://{lb.lb_container}:8080/", *values,
    )  # fmt: skip
    return json.loads(out.stdout)


def processes(lb: Stack) -> str:
    """The pids in the LB container: the master's stays, a reload starts a new worker."""
    return docker("top", lb.lb_container, "-o", "pid").stdout


def traffic(lb: Stack, **args) -> dict:
    where = {"dir": str(lb.lb_dir), "container": lb.lb_container}
    return {"app": lb.app, "path": str(lb.workdir / "state"), "lb": where, "routes": ["api"], **args}


def test_only_trusted_clients_choose_a_color_and_no_backend_sees_anyone_elses_header(lb: Stack) -> None:
    run_module("haproxy_weight", lb.weights(weights={"api_blue": 256, "api_green": 0}))
    # An outsider (blue is live, green idle at weight 0): pinned nowhere, told nothing, and the header is gone.
    for value, answers in from_untrusted(lb, "1", "green", "blue").items():
        assert [a["color"] for a in answers] == ["blue"] * 5, (value, answers)
        assert all(a["server"] is None for a in answers), (value, answers)
        assert all("x-canary" not in a["received"] for a in answers), (value, answers)
    # The Docker host (the smoke probes): reaches the idle color, is told the server, the header goes through.
    assert through_lb(lb, "green") == [{"color": "green", "server": "api_green", "canary_received": "green"}] * 5
    # X-Canary: 1 means the candidate: before a release names one (the canary map is empty), it chooses nothing.
    assert {(a["color"], a["server"]) for a in through_lb(lb, "1")} == {("blue", None)}
    assert {(a["color"], a["server"]) for a in through_lb(lb, "purple")} == {("blue", None)}


def test_x_canary_1_follows_the_candidate_without_a_reload_and_a_reload_keeps_it(lb: Stack) -> None:
    before = processes(lb)
    check, apply, check_again, apply_again = four_way("traffic", traffic(lb, canary="blue"))
    assert check["canary"]["changed"] and check["changed"] and apply["changed"], check
    assert apply["canary"]["before"] is None and apply["canary"]["commands"] == [
        "add map /usr/local/etc/haproxy/canary.map 1 blue"
    ]
    assert not check_again["changed"] and not apply_again["changed"], apply_again
    assert {(a["color"], a["server"]) for a in through_lb(lb, "1", 10)} == {("blue", "api_blue")}
    assert processes(lb) == before, "set through the Runtime API: no new worker"
    assert (lb.lb_dir / "etc" / "canary.map").read_text() == "1 blue\n"
    # A reload (or a restart) reads the file: it keeps the candidate.
    docker("kill", "--signal", "USR2", lb.lb_container)
    deadline = time.monotonic() + 20
    while processes(lb) == before:
        assert time.monotonic() < deadline, "no new worker after the reload"
        time.sleep(0.3)
    lb.wait_status({"api_blue": "UP", "api_green": "UP"})
    assert {a["color"] for a in through_lb(lb, "1", 10)} == {"blue"}
    # The next release's candidate: the entry is replaced.
    green = run_module("traffic", traffic(lb, canary="green"))
    assert green["canary"]["commands"] == ["set map /usr/local/etc/haproxy/canary.map 1 green"], green
    assert {a["color"] for a in through_lb(lb, "1")} == {"green"}


def test_the_lb_runs_under_its_own_uid_with_private_sockets_and_validates_in_the_pinned_image(lb: Stack) -> None:
    run = lb.lb_dir / "run"
    for name in ("admin.sock", "status.sock", "master.sock"):
        st = (run / name).stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
        assert (st.st_uid, st.st_gid) == (LB_UID, LB_UID), name
    assert (run.stat().st_uid, stat.S_IMODE(run.stat().st_mode)) == (LB_UID, 0o750)
    canary_map = (lb.lb_dir / "etc" / "canary.map").stat()
    assert (canary_map.st_uid, canary_map.st_gid, stat.S_IMODE(canary_map.st_mode)) == (0, LB_UID, 0o640)
    users = [line.split()[1] for line in docker("top", lb.lb_container, "-o", "pid,uid").stdout.splitlines()[1:]]
    assert users and set(users) == {str(LB_UID)}, users
    # Every container the lb role created - the `haproxy -c` validator and the LB - ran the pinned digest.
    events = docker(
        "events", "--since", str(int(lb.started)), "--until", str(int(time.time())), "--filter", "type=container",
        "--filter", "event=create", "--filter", f"label=io.switchyard.app={lb.app}", "--format", "{{json .}}",
    )  # fmt: skip
    lb_images = [json.loads(line)["from"] for line in events.stdout.splitlines()]
    assert lb_images and all("@sha256:" in image for image in lb_images), lb_images
    validators = docker(
        "events", "--since", str(int(lb.started)), "--until", str(int(time.time())), "--filter", "type=container",
        "--filter", "event=create", "--format", "{{json .}}",
    )  # fmt: skip
    pinned = lb.testbed.pinned("haproxy:2.6")
    created = [json.loads(line) for line in validators.stdout.splitlines()]
    runs = [e["from"] for e in created if e["from"].startswith(pinned.split("@")[0])]
    assert len(runs) >= 2 and set(runs) == {pinned}, runs


def test_trusted_sources_that_are_not_cidrs_are_refused_before_anything_is_rendered(lb: Stack) -> None:
    config = Path(lb.config).read_text()
    refused = lb.lb_role(check=False, switchyard_canary_trusted_sources=["127.0.0.0/8", "0.0.0.0/0 always_true"])
    assert refused.returncode != 0
    assert "switchyard_canary_trusted_sources[1]='0.0.0.0/0 always_true' is not a CIDR" in refused.stdout
    assert "changed=0" in refused.stdout.replace(" ", ""), refused.stdout
    assert Path(lb.config).read_text() == config


def test_a_sticky_cookie_cannot_pin_a_client_to_a_color_without_a_share(lb: Stack) -> None:
    """Sticky sessions on: a client that sends the cookie value of the candidate at weight 0, or of the old color
    in drain, is balanced like anyone else; the cookie pins it only to a color that takes new traffic."""
    lb.lb_role(switchyard_lb_sticky_cookie="SWY")
    try:

        def colors(cookie: str, count: int = 10) -> set[str]:
            with requests.Session() as session:
                return {
                    session.get(lb.url + "/", cookies={"SWY": cookie}, timeout=5).json()["color"]
                    for _request in range(count)
                }

        run_module("haproxy_weight", lb.weights(weights={"api_blue": 256, "api_green": 0}))
        assert colors("green") == {"blue"}, "the candidate at weight 0 is reached with its cookie"
        assert colors("green|x") == {"blue"}, "HAProxy reads the server up to '|': the same value, another spelling"
        run_module(
            "haproxy_weight", lb.weights(weights={"api_blue": 0, "api_green": 256}, states={"api_blue": "drain"})
        )
        assert colors("blue") == {"green"}, "the drained old color is reached with its cookie"
        run_module(
            "haproxy_weight", lb.weights(weights={"api_blue": 128, "api_green": 128}, states={"api_blue": "ready"})
        )
        assert colors("blue") == {"blue"} and colors("green") == {"green"}, "persistence itself is kept"
        # The traffic module wrote each weight where the template puts it (before the cookie): the role's next run
        # finds the file as it would render it - no reload, which would close idle keep-alive connections.
        rerun = lb.lb_role(switchyard_lb_sticky_cookie="SWY")
        assert "changed=0" in rerun.stdout.replace(" ", ""), rerun.stdout
    finally:
        lb.lb_role()
        run_module("haproxy_weight", lb.weights(weights={"api_blue": 256, "api_green": 0}))
