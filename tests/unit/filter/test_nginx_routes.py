"""The nginx_routes filter (the lb role's routes.conf for the Nginx LB): a first render from the initial weights,
a re-render that keeps the weights in place and returns the very text when nothing changed, and a sticky cookie
name Nginx cannot read refused naming its variable. (The role doing it for real: tests/integration/
test_nginx_upstream.py.)"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.nginx_routes import nginx_routes
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.config import parse

ROUTES = [{"name": "api", "port": 8000, "health_path": "/health"}]


def test_first_render_then_a_rerun_keeps_the_text() -> None:
    first = nginx_routes(None, ROUTES, {"blue": 256, "green": 0})
    assert parse(first)["routes"][0]["weights"] == {"blue": 256, "green": 0}
    assert nginx_routes(first, ROUTES, {"blue": 0, "green": 256}) == first
    assert nginx_routes("", ROUTES, {"blue": 0, "green": 256}) != first  # "" is a first render, as the role slurps


def test_a_cookie_nginx_cannot_read_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="switchyard_lb_sticky_cookie='my-cookie'"):
        nginx_routes(None, ROUTES, {"blue": 256, "green": 0}, "my-cookie")
