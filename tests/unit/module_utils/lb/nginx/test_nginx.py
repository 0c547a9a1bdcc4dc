"""The Nginx backend's parts on what a real Nginx 1.22.1 (the testbed image) wrote and printed: routes.conf
rendered from its state line and read back, the probe of the colors from the LB container, the access log,
and a change that nginx -t refuses (the previous file back in place)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx import backend, config
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.backend import Nginx
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.log import iter_timed_lines, parse_lines
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.probe import (
    parse_probe,
    proc_address,
    status,
)

RECORDED = Path(__file__).resolve().parents[4] / "unit" / "fixtures" / "nginx-1.22.1"
ROUTES = [
    {"name": "api", "port": 8000, "health_path": "/health"},
    {"name": "ghost", "port": 8000, "path_prefix": "/ghost/"},
]


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def route(weights: dict, states: dict | None = None) -> dict:
    return {
        "name": "api",
        "port": 8000,
        "health_path": "/health",
        "weights": weights,
        "states": states or {"blue": "ready", "green": "ready"},
    }


# -- routes.conf -------------------------------------------------------------------------------------
def test_the_recorded_file_is_rendered_from_its_state_line_alone() -> None:
    text = recorded("routes.conf")
    state = config.parse(text)
    assert state["routes"][0]["weights"] == {"blue": 128, "green": 128} and state["canary"] is None
    assert config.render(state) == text


@pytest.mark.parametrize(
    ("weights", "states", "lines"),
    [
        ({"blue": 256, "green": 0}, {}, ["* blue;"]),
        ({"blue": 26, "green": 230}, {}, ["89.84% green;", "* blue;"]),
        ({"blue": 256, "green": 1}, {}, ["0.39% green;", "* blue;"]),
        ({"blue": 128, "green": 128}, {"green": "drain"}, ["* blue;"]),
        ({"blue": 128, "green": 128}, {"blue": "maint"}, ["* green;"]),
        ({"blue": 0, "green": 0}, {}, ["* none;"]),
    ],
)
def test_split_takes_only_ready_colors_with_weight(weights: dict, states: dict, lines: list[str]) -> None:
    assert config.split_lines(route(weights, {"blue": "ready", "green": "ready", **states})) == lines


def test_maint_is_left_out_of_the_header_map_drain_is_not() -> None:
    state = {"generation": "g1", "canary": "green", "sticky_cookie": "", "routes": [route({"blue": 256, "green": 0})]}
    state["routes"][0]["states"] = {"blue": "drain", "green": "maint"}
    text = config.render(state)
    assert 'map $sy_header $sy_api_server { default ""; blue api_blue; }' in text
    assert 'map $sy_trusted $sy_candidate { default "green"; }' in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sticky_cookie": "my-cookie"}, "switchyard_lb_sticky_cookie='my-cookie'"),
        ({"canary": "red"}, "canary='red'"),
        ({"generation": "a b"}, "generation='a b'"),
        ({"routes": [{**route({"blue": 1, "green": 0}), "name": "api;x"}]}, "route='api;x' is not a route name"),
        ({"routes": [{**route({"blue": 1, "green": 0}), "path_prefix": '/a"b'}]}, "path_prefix='/a\"b'"),
        ({"routes": [{**route({"blue": 1, "green": 0}), "path_prefix": "/$x"}]}, "path_prefix='/$x'"),
        ({"routes": [route({"blue": 257, "green": 0})]}, "weights.blue=257"),
        ({"routes": [route({"blue": 1, "green": 0}, {"blue": "up", "green": "ready"})]}, "states.blue='up'"),
    ],
)
def test_values_that_could_break_out_of_their_place_are_refused(change: dict, message: str) -> None:
    state = {"generation": "g1", "canary": None, "sticky_cookie": "", "routes": [route({"blue": 256, "green": 0})]}
    with pytest.raises(InvalidParameters, match=None) as caught:
        config.render({**state, **change})
    assert message in caught.value.msg


def test_the_role_keeps_weights_and_the_text_when_nothing_changes() -> None:
    first = config.for_role(None, ROUTES, {"blue": 256, "green": 0}, "", "g1")
    assert [(r["name"], r["weights"]) for r in config.parse(first)["routes"]] == [
        ("api", {"blue": 256, "green": 0}),
        ("ghost", {"blue": 256, "green": 0}),
    ]
    text = recorded("routes.conf")
    assert config.for_role(text, ROUTES, {"blue": 256, "green": 0}, "", "g2") == text
    # A new setting: the weights in place kept, a new generation.
    sticky = config.for_role(text, ROUTES, {"blue": 256, "green": 0}, "sy_session", "g2")
    state = config.parse(sticky)
    assert state["generation"] == "g2" and state["routes"][0]["weights"] == {"blue": 128, "green": 128}
    assert 'map $cookie_sy_session $sy_split_key { "" $request_id; default $cookie_sy_session; }' in sticky
    with pytest.raises(LBError, match="does not start with its state line"):
        config.for_role("server {}\n", ROUTES, {"blue": 256, "green": 0}, "", "g3")


def test_route_variables_never_collide() -> None:
    names = ["a-b", "a_b", "a__b", "a-_b", "a_-b", "ab"]
    assert len({config.var(n) for n in names}) == len(names)


# -- the probe -----------------------------------------------------------------------------------------
def test_probe_counts_the_connections_in_flight_to_each_color_from_proc_net_tcp() -> None:
    # Recorded with a request held in flight to green (slowed by 4 s): /proc/net/tcp read with cat, no `ss`.
    colors, generation = parse_probe(recorded("probe-api.stdout"), 8000)
    assert colors["blue"] == {"code": 200, "addresses": ["172.23.0.2"], "sessions": 0}
    assert colors["green"] == {"code": 200, "addresses": ["172.23.0.3"], "sessions": 1}
    assert generation == config.parse(recorded("routes.conf"))["generation"]
    ghost, _generation = parse_probe(recorded("probe-ghost.stdout"), 8000)
    assert ghost["blue"] == {"code": 0, "addresses": [], "sessions": 0}


@pytest.mark.parametrize(
    ("field", "address"),
    [
        ("030017AC:1F40", ("172.23.0.3", 8000)),
        ("0000000000000000FFFF0000030017AC:1F40", ("172.23.0.3", 8000)),  # IPv4-mapped, in tcp6
        ("00000000000000000000000001000000:1F90", ("::1", 8080)),
    ],
)
def test_proc_net_tcp_addresses(field: str, address: tuple) -> None:
    host, port = proc_address(field)
    assert (str(host), port) == address


def test_control_level_names_the_tool_the_lb_image_lacks(tmp_path: Path) -> None:
    # Recorded: the checker run in the testbed's base image with curl removed (rm /usr/bin/curl).
    runner = Replay({"command -v": (0, recorded("tools-without-curl.stdout"), "")})
    lb = Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, runner)
    with pytest.raises(LBError, match="lacks curl") as caught:
        lb.control_level()
    assert "sh, cat, getent, curl" in caught.value.msg
    # An image without sh: docker exec's own answer (recorded), rc 126.
    no_sh = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file '
    runner = Replay({"command -v": (126, "", no_sh + "not found in $PATH: unknown")})
    with pytest.raises(LBError, match="lacks sh"):
        Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, runner).control_level()


class Replay:
    """Recorded answers by a word of the command."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers

    def run(self, args, what, check=True, data=None):
        for word, answer in self.answers.items():
            if any(word in arg for arg in args):
                return answer
        raise AssertionError(f"unexpected command {args}")


@pytest.mark.parametrize(
    ("state", "code", "shown"),
    [
        ("ready", 200, (True, "UP", "L7OK")),
        ("drain", 200, (True, "DRAIN", "L7OK")),
        ("maint", 200, (False, "MAINT", "L7OK")),
        ("ready", 503, (False, "DOWN", "L7STS")),
        ("ready", 0, (False, "DOWN", "L4CON")),
    ],
)
def test_status_speaks_haproxys_vocabulary(state: str, code: int, shown: tuple) -> None:
    assert status(state, code) == shown


# -- the access log ------------------------------------------------------------------------------------
def test_samples_per_color_real_apart_from_synthetic() -> None:
    # request_samples reads `docker logs` without --timestamps: each line as Nginx wrote it.
    lines = [line.split(" ", 1)[1] for line in recorded("access-timestamps.log").splitlines()]
    api = parse_lines(lines, "api")
    # 6 at /, one 404 (a quote in the path), one held in flight
    assert api["green"].real.requests + api["blue"].real.requests == 8
    assert api["green"].synthetic.requests == 1 and api["blue"].synthetic.requests == 1
    assert min(api["green"].real.latencies_ms) >= 1500  # green was slowed by 1.5 s
    ghost = parse_lines(lines, "ghost")
    assert ghost["blue"].statuses == [502] and ghost["blue"].errors == 1 and ghost["blue"].latencies_ms == []


def test_a_hostile_request_line_is_never_read_as_a_routes_field() -> None:
    # A request Nginx logged outside any route (switchyard=-/-, 400) whose request line imitates a route's fields.
    hostile = '2026-12-04T04:23:20+00:00 172.24.0.1 switchyard=-/- 400 - 0.000 157 "GET /x switchyard=api/green 500 0.1'
    hostile += ' 0.1 HTTP/1.1"'
    stamped = "2026-12-04T04:23:20.000000001Z " + hostile
    assert parse_lines([hostile, stamped], "api") == {}
    assert list(iter_timed_lines([stamped], ["api"])) == []
    # The same request in a route is read from its own fields only.
    real = hostile.replace("switchyard=-/- 400 -", "switchyard=api/blue 200 0.002", 1)
    assert parse_lines([real], "api")["blue"].statuses == [200]
    assert [r[1:4] for r in iter_timed_lines(["2026-12-04T04:23:20Z " + real], ["api"])] == [("api", "blue", 200)]


def test_timed_records_in_log_order_without_the_error_lines() -> None:
    records = list(iter_timed_lines(recorded("access-timestamps.log").splitlines(), ["api", "ghost"]))
    assert len(records) == 11
    first = records[0]
    assert first[1:4] == ("api", "green", 200) and first[4] == 1502
    stamp = datetime.datetime(2026, 12, 4, 4, 23, 8, 247277, tzinfo=datetime.UTC).timestamp()
    assert abs(first[0] - stamp) < 0.001
    assert ("ghost", "blue", 502, None) in [r[1:] for r in records]


# -- a change nginx -t refuses -------------------------------------------------------------------------
class Runner:
    """The real Nginx's answers, recorded: the probe of both colors, then nginx -t failing."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, args, what, check=True, data=None):
        self.calls.append(list(args))
        if "-t" in args:
            return int(recorded("nginx-t-invalid.rc")), "", recorded("nginx-t-invalid.stderr")
        if "-s" in args:
            raise AssertionError("never reloaded after nginx -t failed")
        return 0, recorded("probe-api.stdout"), ""


def test_a_refused_file_is_replaced_by_the_previous_one_with_nginxs_message(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "routes.conf"
    path.write_text(recorded("routes.conf"))
    runner = Runner()
    lb = Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, runner)
    with pytest.raises(LBError) as caught:
        lb.shift("api", {"blue": 256, "green": 0}, {})
    assert 'unknown directive "no_such_directive"' in caught.value.msg
    assert "previous routes.conf is back in place and Nginx still runs it" in caught.value.msg
    assert path.read_text() == recorded("routes.conf")
    assert [c for c in runner.calls if "-t" in c] == [
        ["docker", "exec", "shop-lb-nginx-1", "nginx", "-e", "stderr", "-c", "/etc/nginx/switchyard/nginx.conf", "-t"]
    ]


def test_a_second_writer_waits_for_the_lock_then_gives_up_naming_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "etc").mkdir()
    lb = Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, Runner())
    monkeypatch.setattr(backend, "LOCK_WAIT", 0.3)
    with lb.locked(), lb.locked():  # nested: one lock
        with pytest.raises(LBError, match=r"another writer of .*routes.conf has held .*etc/.switchyard.lock"):
            with Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, Runner()).locked():
                pass
    with Nginx({"dir": str(tmp_path), "container": "shop-lb-nginx-1"}, Runner()).locked():
        pass  # released


def test_the_container_is_required() -> None:
    with pytest.raises(InvalidParameters, match="lb.container is required for kind nginx"):
        Nginx({"dir": "/tmp/x"}, Runner())
