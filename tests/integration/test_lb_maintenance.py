"""The maintenance page (a recreate's outage) on every LB kind, through the traffic module against the real LB: on
(check mode first, then applied and answered through the LB - 503, Retry-After, the page deployed, the header
canary's requests too), kept by a re-run of the lb role, idempotent, refused to go off while the color it resumes on
is not UP, then off once it is, with the outage measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.lb_kinds import backend, kind_stack
from support.modules import run_module
from support.stack import Stack
from support.testbed import Testbed

pytestmark = pytest.mark.testbed

BODY = "<h1>switchyard-test-maintenance-page</h1>"


@pytest.fixture(scope="module", params=["haproxy", "nginx", "traefik"])
def stack(request, testbed: Testbed, tmp_path_factory) -> Iterator[Stack]:
    for built in kind_stack(testbed, tmp_path_factory, request.param):
        built.lb_vars.update(switchyard_maintenance_retry_after=7, switchyard_maintenance_body=BODY)
        yield built


def ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def traffic(stack: Stack, state: Path, **args) -> dict:
    lb = {"kind": stack.kind, "dir": str(stack.lb_dir), "container": stack.lb_container}
    return {"app": stack.app, "path": str(state), "lb": lb, "routes": ["api"], "up_timeout": 30, **args}


def answers(stack: Stack, **headers: str) -> requests.Response:
    return requests.get(stack.url + "/", headers=headers, timeout=5)


def test_maintenance_page_on_every_kind(stack: Stack, tmp_path: Path) -> None:
    # The page of this stack (the lb role with the page's settings; the fixture built the LB before they were set).
    stack.lb_role()
    ok(run_module("traffic", traffic(stack, tmp_path, weights={"blue": 256, "green": 0})))
    assert answers(stack).json()["color"] == "blue"
    on = {"enabled": True, "probe_urls": [stack.url + "/"]}

    check = ok(run_module("traffic", traffic(stack, tmp_path, maintenance=on), check=True))
    assert check["changed"] and check["maintenance"]["routes"][0]["before"] is False
    assert check.get("diff"), "check mode shows the maintenance change as a diff"
    assert answers(stack).status_code == 200, "check mode changed nothing"

    applied = ok(run_module("traffic", traffic(stack, tmp_path, maintenance=on)))
    assert applied["changed"] and applied["maintenance"]["probes"][0]["page"]
    page = answers(stack)
    assert page.status_code == 503 and page.headers["Retry-After"] == "7"
    assert page.headers["X-Switchyard-Maintenance"] == "on" and BODY in page.text
    assert answers(stack, **{"X-Canary": "blue"}).status_code == 503, "the header canary gets the page too"
    assert backend(stack).maintenance("api") is True
    assert backend(stack).maintenance("ghost") is False, "only the routes asked"

    again = ok(run_module("traffic", traffic(stack, tmp_path, maintenance=on)))
    assert not again["changed"], again["maintenance"]
    stack.lb_role()  # a re-run of the lb role keeps the route in maintenance
    assert answers(stack).status_code == 503 and backend(stack).maintenance("api") is True

    # Resuming on a color that is not UP is refused: the page stays.
    ok(run_module("traffic", traffic(stack, tmp_path, states={"green": "maint"})))
    refused = run_module(
        "traffic",
        traffic(stack, tmp_path, up_timeout=2, maintenance={"enabled": False, "wait_up": "green"}),
    )
    assert refused.get("failed") and "not UP" in refused["msg"] and "stays on" in refused["msg"]
    assert answers(stack).status_code == 503

    since = applied["maintenance"]["verified_at"]
    off = {"enabled": False, "wait_up": "blue", "probe_urls": [stack.url + "/"], "since": since}
    resumed = ok(run_module("traffic", traffic(stack, tmp_path, maintenance=off)))
    assert resumed["changed"] and resumed["maintenance"]["outage_ms"] > 0
    assert answers(stack).json()["color"] == "blue"
    assert not ok(run_module("traffic", traffic(stack, tmp_path, maintenance=off)))["changed"]
    ok(run_module("traffic", traffic(stack, tmp_path, states={"green": "ready"})))
