"""The lb_routes filter: every value the lb role renders into haproxy.cfg (and compose.yaml) holds only the
characters its place there can take; a value that would end a line, a string or an ACL is refused naming its
variable and the characters allowed. (The lb role refusing a hostile route for real is in
tests/integration/test_haproxy_weight.py.)"""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.lb_routes import lb_routes

API = {"name": "api", "port": 8000, "health_path": "/health"}
DEFAULTS = {
    "switchyard_lb_sticky_cookie": "",
    "switchyard_lb_log_format": "%t %ci %b/%s %ST %Tr %Ta %B %{+Q}r",
    "switchyard_lb_timeout_connect": "2s",
    "switchyard_lb_timeout_client": "30s",
    "switchyard_lb_timeout_server": "30s",
    "switchyard_lb_timeout_check": "2s",
    "switchyard_lb_check_inter": "1s",
    "switchyard_lb_check_fall": 3,
    "switchyard_lb_check_rise": "2",
    "switchyard_lb_maxconn": 4096,
    "switchyard_lb_resolver_hold": "1s",
    "switchyard_lb_resolver_hold_unanswered": "60s",
    "switchyard_lb_initial_weights": {"blue": 256, "green": 0},
    "switchyard_lb_bind_address": "0.0.0.0",
    "switchyard_lb_public_port": 8080,
    "switchyard_lb_metrics_port": 0,
    "switchyard_lb_metrics_bind_address": "127.0.0.1",
}


def test_the_defaults_and_the_demo_routes_pass() -> None:
    routes = [API, {"name": "web_v2", "port": "8001", "path_prefix": "/items"}]
    assert lb_routes(routes, DEFAULTS) == [
        {"name": "api", "port": 8000, "health_path": "/health"},
        {"name": "web_v2", "port": 8001, "health_path": "/health", "path_prefix": "/items"},
    ]
    assert lb_routes([{**API, "health_path": "/health?full=1&x=%20", "path_prefix": ""}]) == [
        API | {"health_path": "/health?full=1&x=%20"}
    ]
    lb_routes([API], {**DEFAULTS, "switchyard_lb_sticky_cookie": "SERVERID", "switchyard_lb_bind_address": "::1"})
    lb_routes(
        [API], {**DEFAULTS, "switchyard_lb_metrics_port": "8405", "switchyard_lb_metrics_bind_address": "10.0.0.5"}
    )


@pytest.mark.parametrize(
    ("route", "field", "rule"),
    [
        ({**API, "path_prefix": "/x }\n    use_backend be_evil"}, "switchyard_lb_routes[0].path_prefix", "'/' then"),
        ({**API, "path_prefix": "/x } || { always_true"}, "switchyard_lb_routes[0].path_prefix", "'/' then"),
        ({**API, "path_prefix": "items"}, "switchyard_lb_routes[0].path_prefix", "'/' then"),
        ({**API, "path_prefix": "/a#b"}, "switchyard_lb_routes[0].path_prefix", "'/' then"),
        ({**API, "health_path": "/health\n    http-request deny"}, "switchyard_lb_routes[0].health_path", "? &"),
        ({**API, "health_path": "/health HTTP/1.1\\r\\nHost: x"}, "switchyard_lb_routes[0].health_path", "? &"),
        ({**API, "health_path": "/" + "a" * 256}, "switchyard_lb_routes[0].health_path", "up to 255"),
        ({**API, "name": "api\nbackend be_evil"}, "switchyard_lb_routes[0].name", "a lowercase letter or digit"),
        ({**API, "name": "api; set server be_api/api_blue state maint"}, "switchyard_lb_routes[0].name", "a-z 0-9 _ -"),
        ({**API, "name": "API"}, "switchyard_lb_routes[0].name", "a-z 0-9 _ -"),
        ({**API, "name": "_api"}, "switchyard_lb_routes[0].name", "a-z 0-9 _ -"),
        ({**API, "name": "a" * 49}, "switchyard_lb_routes[0].name", "up to 47"),
        ({**API, "port": "8000\n"}, "switchyard_lb_routes[0].port", "an integer from 1 to 65535"),
        ({**API, "port": 0}, "switchyard_lb_routes[0].port", "an integer from 1 to 65535"),
        ({**API, "port": True}, "switchyard_lb_routes[0].port", "an integer from 1 to 65535"),
    ],
)
def test_a_hostile_route_field_is_refused_naming_it(route: dict, field: str, rule: str) -> None:
    with pytest.raises(
        AnsibleFilterError, match=re.escape(f"{field}={route[field.rsplit('.', 1)[1]]!r} is refused: use")
    ):
        lb_routes([route])
    with pytest.raises(AnsibleFilterError, match=re.escape(rule)):
        lb_routes([route])


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("switchyard_lb_sticky_cookie", "SRV insert\n    server evil 10.0.0.1:80", "1 to 64 of"),
        ("switchyard_lb_sticky_cookie", "a#b", "1 to 64 of"),
        ("switchyard_lb_log_format", '%t"\n    http-request redirect location http://evil', "without '\"'"),
        ("switchyard_lb_log_format", "%t ${DB_PASSWORD}", "'$'"),
        ("switchyard_lb_log_format", "%t \\", "'\\'"),
        ("switchyard_lb_log_format", "", "a non-empty line"),
        ("switchyard_lb_timeout_client", "30s\n    stats enable", "a number with an optional unit"),
        ("switchyard_lb_check_inter", "1s fall 1 rise 1 addr 10.0.0.1", "a number with an optional unit"),
        ("switchyard_lb_resolver_hold", "", "a number with an optional unit"),
        ("switchyard_lb_maxconn", "4096\n", "an integer from 1 to"),
        ("switchyard_lb_check_fall", 0, "an integer from 1 to"),
        ("switchyard_lb_initial_weights", {"blue": 256}, "a dict of blue and green"),
        ("switchyard_lb_bind_address", '0.0.0.0:80:80"\n    privileged: true', "an IPv4 or IPv6 address"),
        ("switchyard_lb_public_port", 70000, "an integer from 1 to 65535"),
        ("switchyard_lb_metrics_port", -1, "an integer from 0 to 65535"),
        ("switchyard_lb_metrics_port", 8080, "a port other than switchyard_lb_public_port"),
        ("switchyard_lb_metrics_bind_address", "127.0.0.1:9\n", "an IPv4 or IPv6 address"),
        ("switchyard_lb_image", "haproxy@sha256:" + "0" * 64 + "\n    privileged: true", "an image reference"),
        ("switchyard_lb_image", "haproxy:2.6 --privileged", "an image reference"),
        ("switchyard_lb_dir", "/var/lib/x:/host-root", "an absolute path"),
        ("switchyard_lb_dir", "/var/lib/../../etc", "no '..' component"),
        ("switchyard_lb_dir", "relative/lb", "an absolute path"),
        ("switchyard_lb_dir", "/", "at least two levels deep"),
        ("switchyard_lb_dir", "/etc", "at least two levels deep"),
        ("switchyard_lb_dir", "/var/lib", "not a system directory"),
        ("switchyard_lb_project", "shop-lb\n    privileged: true", "a Compose project name"),
    ],
)
def test_a_hostile_setting_is_refused_naming_its_variable(name: str, value, rule: str) -> None:
    with pytest.raises(
        AnsibleFilterError, match=re.escape(f"{name}={value!r} is refused: use") + ".*" + re.escape(rule)
    ):
        lb_routes([API], {**DEFAULTS, name: value})


def test_initial_weights_are_checked_per_color() -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape("switchyard_lb_initial_weights.green=300 is refused")):
        lb_routes([API], {"switchyard_lb_initial_weights": {"blue": 0, "green": 300}})


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([], "switchyard_lb_routes=[] is refused: use a non-empty list"),
        ("api", "switchyard_lb_routes='api' is refused"),
        (["api"], "switchyard_lb_routes[0]='api' is refused: use a dict"),
        ([API, {**API, "port": 9000}], "each route name once (given more than once: api)"),
        ([{**API, "path_prefx": "/x"}], "switchyard_lb_routes[0]: unknown key(s) path_prefx"),
        ([{"port": 8000}], "switchyard_lb_routes[0].name=None is refused"),
    ],
)
def test_the_list_itself(routes, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        lb_routes(routes)
