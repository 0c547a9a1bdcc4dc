"""The maintenance page of every LB kind, without the LB: the page's settings (lb/page.py), what tells the page from
any other 503, HAProxy's maintenance map against a stand-in socket that answers like HAProxy, and what Nginx's
routes.conf and Traefik's route file render for a route in maintenance (the real LBs:
tests/integration/test_lb_maintenance.py)."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb import page
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy import maintenance
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx import config
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik import dynamic

MAP_ID = "/usr/local/etc/haproxy/maintenance.map"


class Socket:
    """Answers show/set/add map as HAProxy's Runtime API does (the formats of test_canary_map.py's recordings)."""

    def __init__(self, entries=None):
        self.entries = None if entries is None else dict(entries)

    def query(self, command):
        if self.entries is None:
            return "Unknown map identifier. Please use #<id> or <file>.\n"
        return "".join(f"0x56439a95e540 {k} {v}\n" for k, v in self.entries.items()) + "\n"

    def execute(self, commands):
        answers = []
        for command in commands:
            verb, _map, _id, key, value = command.split()
            if verb == "set" and key not in self.entries:
                answers.append((command, "entry not found."))
                continue
            self.entries[key] = value
            answers.append((command, ""))
        return answers


def test_the_page_settings_are_checked_naming_the_variable() -> None:
    assert page.maintenance_page("", None, 30) == {"body": page.DEFAULT_BODY, "retry_after": 30}
    assert page.maintenance_page("<p>mine</p>", "", "45") == {"body": "<p>mine</p>", "retry_after": 45}
    assert page.maintenance_page("<p>mine</p>", "<p>file</p>", 5)["body"] == "<p>file</p>"
    with pytest.raises(InvalidParameters, match="switchyard_maintenance_retry_after='30\\\\nX'"):
        page.maintenance_page("", None, "30\nX")
    with pytest.raises(InvalidParameters, match="switchyard_maintenance_retry_after=0"):
        page.maintenance_page("", None, 0)
    with pytest.raises(InvalidParameters, match="switchyard_maintenance_body_file: the page is 9000 bytes"):
        page.maintenance_page("", "x" * 9000, 30)


def test_only_a_503_with_the_marker_and_retry_after_is_the_page() -> None:
    assert page.is_page(503, {"Retry-After": "30", "X-Switchyard-Maintenance": "on"})
    assert not page.is_page(503, {"Retry-After": "30"}), "another 503 (an LB without a server)"
    assert not page.is_page(200, {"Retry-After": "30", "X-Switchyard-Maintenance": "on"})
    assert not page.is_page(503, {"X-Switchyard-Maintenance": "on"})
    with pytest.raises(InvalidParameters, match="maintenance.probe_urls\\[0\\]='ftp://x/'"):
        page.check_url("ftp://x/", "maintenance.probe_urls[0]")


def test_haproxy_map_on_writes_the_file_then_haproxy_and_reads_back(tmp_path) -> None:
    path = tmp_path / "maintenance.map"
    path.write_text("")
    socket = Socket({})
    planned = maintenance.set_maintenance(str(path), MAP_ID, "api", True, [socket], check_mode=True)
    assert planned["changed"] and planned["commands"] == [f"add map {MAP_ID} api on"] and path.read_text() == ""
    done = maintenance.set_maintenance(str(path), MAP_ID, "api", True, [socket])
    assert done["changed"] and done["before"] is False and done["after"] is True
    assert path.read_text() == "api on\n" and socket.entries == {"api": "on"}
    assert maintenance.read_maintenance([socket], MAP_ID, "api") is True
    assert not maintenance.set_maintenance(str(path), MAP_ID, "api", True, [socket])["changed"], "idempotent"
    off = maintenance.set_maintenance(str(path), MAP_ID, "api", False, [socket])
    assert off["commands"] == [f"set map {MAP_ID} api off"] and path.read_text() == "api off\n"
    # A fresh LB (no entry at all) is off: nothing to do.
    assert not maintenance.set_maintenance(str(tmp_path / "maintenance.map"), MAP_ID, "web", False, [socket])["changed"]


def test_haproxy_without_the_map_says_to_run_the_lb_role(tmp_path) -> None:
    path = tmp_path / "maintenance.map"
    with pytest.raises(maintenance.MaintenanceMapError, match="missing: run the lb role"):
        maintenance.set_maintenance(str(path), MAP_ID, "api", True, [Socket({})])
    path.write_text("")
    with pytest.raises(maintenance.MaintenanceMapError, match="predates the maintenance page; run the lb role"):
        maintenance.set_maintenance(str(path), MAP_ID, "api", True, [Socket(None)])


def nginx_state(maintenance_on: bool) -> dict:
    route = {
        "name": "api",
        "port": 8000,
        "health_path": "/health",
        "weights": {"blue": 256, "green": 0},
        "states": {"blue": "ready", "green": "ready"},
        "maintenance": maintenance_on,
    }
    return {"generation": "g1", "canary": None, "sticky_cookie": "", "maintenance_retry_after": 12, "routes": [route]}


def test_nginx_a_route_in_maintenance_answers_the_page_and_the_state_line_keeps_it() -> None:
    off = config.render(nginx_state(False))
    assert "maintenance" not in off.split("\n", 1)[1] and "error_page" not in off
    text = config.render(nginx_state(True))
    assert "        error_page 503 /_switchyard/maintenance.html;\n        return 503;" in text
    assert "        alias /etc/nginx/switchyard/maintenance.html;" in text
    assert "add_header Retry-After 12 always;" in text and "add_header X-Switchyard-Maintenance on always;" in text
    assert "proxy_pass" not in text, "nothing of the route reaches a color"
    state = config.parse(text)
    assert state["routes"][0]["maintenance"] is True and state["maintenance_retry_after"] == 12
    # The lb role's re-run keeps the route in maintenance and the text as it is.
    routes = [{"name": "api", "port": 8000, "health_path": "/health"}]
    kept = config.for_role(text, routes, {"blue": 256, "green": 0}, "", "g2", retry_after=12)
    assert kept == text
    with pytest.raises(InvalidParameters, match="maintenance_retry_after='12'"):
        config.check_state({**nginx_state(True), "maintenance_retry_after": "12"})


SETTINGS = {
    "routes": [{"name": "api", "port": 8000, "health_path": "/health", "path_prefix": "/api/"}],
    "trusted": ["192.168.224.1/32"],
    "maintenance": {"retry_after": 9, "body": "<h1>back soon</h1>"},
}
RECORD = {"colors": {"blue": {"weight": 256, "state": "ready"}, "green": {"weight": 0, "state": "ready"}}}


def test_traefik_a_route_in_maintenance_puts_the_page_in_front_of_every_router() -> None:
    off = dynamic.render_route(SETTINGS, "api", {**RECORD, "canary": "green"})["http"]
    assert "api-maintenance" not in off["middlewares"]
    on = dynamic.render_route(SETTINGS, "api", {**RECORD, "canary": "green", "maintenance": True})["http"]
    plugin = on["middlewares"]["api-maintenance"]["plugin"][dynamic.MAINTENANCE_PLUGIN]
    assert plugin == {
        "status": 503,
        "retryAfter": 9,
        "header": "X-Switchyard-Maintenance",
        "body": "<h1>back soon</h1>",
    }
    # Every router of the public entrypoint; the check routers (internal entrypoint, matching nothing) have none.
    public = {name: r for name, r in on["routers"].items() if r["entryPoints"] == ["web"]}
    assert public and all(r["middlewares"][0] == "api-maintenance" for r in public.values())
    assert sorted(set(on["routers"]) - set(public)) == ["api.health-blue", "api.health-green"]
    assert all("middlewares" not in on["routers"][name] for name in ("api.health-blue", "api.health-green"))
    assert on["services"] == off["services"], "the colors stay in use: Traefik keeps checking their health"
    with pytest.raises(InvalidParameters, match="maintenance='yes'"):
        dynamic.check_record({**RECORD, "maintenance": "yes"})
    with pytest.raises(InvalidParameters, match="maintenance.retry_after=0"):
        dynamic.check_settings({**SETTINGS, "maintenance": {"retry_after": 0}})
