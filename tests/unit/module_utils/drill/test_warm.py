"""Whether the drill's target is warm: containers running and healthy with the recorded digests, and the LB able to
send it requests (UP, or in maint where the shift lifts it as a rollback does)."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.drill.manager import (
    check_probe,
    restore_targets,
    summary,
)
from ansible_collections.switchyard.release.plugins.module_utils.drill.warm import container_problems, lb_problems

DIGEST = "127.0.0.1:5000/demo/api@sha256:" + "a" * 64


def container(state="running", health="healthy", image=DIGEST, service="api") -> dict:
    return {
        "name": f"shop-blue-{service}-1",
        "service": service,
        "state": state,
        "health": health,
        "restart_count": 0,
        "image": image,
    }


def test_running_healthy_containers_of_the_recorded_digests_are_warm() -> None:
    assert container_problems("shop-blue", [container()], {"api": DIGEST}) == []


def test_a_stopped_unhealthy_missing_or_replaced_color_is_not() -> None:
    assert container_problems("shop-blue", [], {"api": DIGEST}) == [
        "project shop-blue has no containers (removed, or never deployed on this host)"
    ]
    stopped = container_problems("shop-blue", [container(state="exited", health="unhealthy")], {"api": DIGEST})
    assert stopped == ["shop-blue-api-1 is exited, unhealthy, not running and healthy"]
    other = container(image=DIGEST.replace("a" * 64, "b" * 64))
    assert "runs" in container_problems("shop-blue", [other], {"api": DIGEST})[0]
    assert container_problems("shop-blue", [container()], {"api": DIGEST, "worker": DIGEST}) == [
        "service worker of shop-blue has no container"
    ]


def test_the_lb_must_be_able_to_send_the_color_requests_on_every_route() -> None:
    up = {"weight": 0, "state": "drain", "up": True, "status": "DRAIN"}
    down = {"weight": 0, "state": "drain", "up": False, "status": "MAINT (resolution)"}
    maint = {"weight": 0, "state": "maint", "up": False, "status": "MAINT"}
    assert lb_problems("blue", {"api": {"blue": up}, "web": {"blue": maint}}) == []
    assert lb_problems("blue", {"api": {"blue": down}, "web": {}}) == [
        "route api: the LB shows blue MAINT (resolution)",
        "route web has no server for blue",
    ]


def test_the_restore_is_exactly_what_each_route_showed_before() -> None:
    before = {
        "api": {"blue": {"weight": 0, "state": "drain", "up": True}, "green": {"weight": 256, "state": "ready"}},
        "web": {"blue": {"weight": 0, "state": "maint", "up": False}, "green": {"weight": 200, "state": "ready"}},
    }
    assert restore_targets(before) == {
        "api": ({"blue": 0, "green": 256}, {"blue": "drain", "green": "ready"}),
        "web": ({"blue": 0, "green": 200}, {"blue": "maint", "green": "ready"}),
    }


def test_the_summary_says_what_would_happen_and_what_happened() -> None:
    drill = {
        "id": "d1",
        "to": "blue",
        "from": "green",
        "version": "v1",
        "percent": 10,
        "full": False,
        "rto_ms": 41.6,
        "back_ms": None,
        "failed_requests": 0,
        "outcome": "planned",
        "reason": None,
    }
    assert summary("shop", drill, 10).startswith("Would move 10 % of new traffic of shop to blue (v1) for 10 s")
    done = summary("shop", {**drill, "outcome": "failed", "full": True, "reason": "blue went DOWN"}, 10)
    assert done == (
        "Drill d1: all new traffic of shop to blue (v1) and back to green - RTO 42 ms, back not reached, "
        "0 failed requests: failed (blue went DOWN)"
    )


def test_a_probe_address_or_path_that_would_break_the_request_is_refused() -> None:
    check_probe({"url": "http://127.0.0.1:8080", "path": "/health?x=1"})
    for url, path, named in [
        ("ftp://lb", "/", "probe.url"),
        ("http://", "/", "probe.url"),
        ("http://lb", "health", "probe.path"),
        ("http://lb", "/a b", "probe.path"),
        ("http://lb", "/a\r\nX-Canary: 1", "probe.path"),
    ]:
        with pytest.raises(InvalidParameters, match=named):
            check_probe({"url": url, "path": path})
