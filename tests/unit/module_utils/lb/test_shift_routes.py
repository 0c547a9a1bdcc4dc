"""LoadBalancer.shift_routes, the order every LB kind shares: names checked first, every route planned
before the first command (or, best effort, each route as far as it goes), the guard (the run's lease)
before each route, what a failed route shows kept, and the weights the ledger gets."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    LBError,
    LoadBalancer,
    observed_weights,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import NotHolder


class Recorded(LoadBalancer):
    """An LB of routes whose servers are a dict; shift() applies at once. refuse: route -> message."""

    kind = "recorded"

    def __init__(self, routes, refuse=None, settle=None):
        self.state = {
            r: {"blue": {"weight": 256, "state": "ready"}, "green": {"weight": 0, "state": "ready"}} for r in routes
        }
        self.refuse = refuse or {}
        self.settle = settle or {}  # route -> seconds the plan waits for the LB's health (Traefik's settled_s)
        self.calls = []

    def check_route(self, route):
        if route not in self.state:
            raise LBError(f"no route {route}")

    def servers(self, route):
        return {c: dict(v) for c, v in self.state[route].items()}

    def shift(self, route, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        self.calls.append((route, check_mode))
        if route in self.refuse:
            raise LBError(self.refuse[route])
        if not check_mode:
            if guard:
                guard()
            for color, weight in weights.items():
                self.state[route][color]["weight"] = weight
        waited = {"settled_s": self.settle.pop(route)} if route in self.settle else {}
        return {"route": route, "changed": True, "after": self.servers(route), **waited}


def test_every_route_is_planned_before_the_first_change() -> None:
    lb = Recorded(["api", "web"], refuse={"web": "web's green is DOWN"})
    with pytest.raises(LBError, match="web's green is DOWN"):
        lb.shift_routes(["api", "web"], {"blue": 128, "green": 128}, {})
    assert lb.state["api"]["green"]["weight"] == 0, "nothing moved: web was refused at planning"


def test_a_wait_of_the_plan_shows_in_the_route_it_was_made_for() -> None:
    lb = Recorded(["api", "web"], settle={"web": 0.4})
    moved = lb.shift_routes(["api", "web"], {"blue": 128, "green": 128}, {})
    assert [r.get("settled_s") for r in moved] == [None, 0.4]
    assert lb.calls == [("api", True), ("web", True), ("api", False), ("web", False)]


def test_best_effort_moves_what_it_can_and_keeps_what_the_failed_route_shows() -> None:
    lb = Recorded(["api", "web"], refuse={"web": "web's socket is gone"})
    with pytest.raises(LBError) as failed:
        lb.shift_routes(["api", "web"], {"blue": 256, "green": 0}, {}, best_effort=True)
    routes = {r["route"]: r for r in failed.value.details["routes"]}
    assert routes["web"]["failed"] and routes["web"]["after"]["green"]["weight"] == 0


def test_the_guard_stops_a_best_effort_shift_at_once_when_the_lock_is_lost() -> None:
    lb = Recorded(["api", "web"])
    calls = []

    def guard():
        calls.append(1)
        if len(calls) > 1:
            raise NotHolder("the release lock was lost: held by bob@ctl (release r2)")

    with pytest.raises(SwitchyardError, match="bob@ctl"):
        lb.shift_routes(["api", "web"], {"blue": 128, "green": 128}, {}, best_effort=True, guard=guard)
    assert lb.state["api"]["green"]["weight"] == 128 and lb.state["web"]["green"]["weight"] == 0


def test_observed_weights_never_hide_a_color_that_still_has_traffic_on_a_route() -> None:
    routes = [
        {"route": "api", "after": {"blue": {"weight": 256}, "green": {"weight": 0}}},
        {"route": "web", "after": {"blue": {"weight": 128}, "green": {"weight": 128}}},
        {"route": "admin", "failed": True},
    ]
    assert observed_weights(routes) == {"blue": 256, "green": 128}
    assert observed_weights(routes[:1]) == {"blue": 256, "green": 0}
    assert observed_weights([]) == {}
