"""Planning a project's state change from its containers: the heart of check mode and `changed`."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.compose import plan as plans
from ansible_collections.switchyard.release.plugins.module_utils.compose.health import container_verdict


def container(service: str, config_hash: str = "h1", state: str = "running", **extra) -> dict:
    base = {
        "id": f"id-{service}-{config_hash}-{state}",
        "service": service,
        "config_hash": config_hash,
        "state": state,
        "image_id": "sha256:i",
        "health": None,
        "restart_count": 0,
    }
    return {**base, **extra}


def test_present_creates_recreates_and_starts_only_what_differs() -> None:
    running = [container("api", "old"), container("worker", "w", state="exited"), container("cron", "c")]
    actions = plans.plan_present({"api": "new", "worker": "w", "cron": "c", "web": "x"}, running, remove_orphans=False)
    assert actions["created"] == ["web"]
    assert actions["recreated"] == ["api"]
    assert actions["started"] == ["worker"]
    assert plans.has_changes(actions)


def test_present_on_a_converged_project_plans_nothing() -> None:
    actions = plans.plan_present({"api": "h1"}, [container("api")], remove_orphans=True)
    assert not plans.has_changes(actions)


def test_orphans_are_removed_only_when_asked() -> None:
    running = [container("api"), container("old-worker")]
    assert plans.plan_present({"api": "h1"}, running, remove_orphans=False)["removed"] == []
    assert plans.plan_present({"api": "h1"}, running, remove_orphans=True)["removed"] == ["old-worker"]


def test_stopped_and_absent() -> None:
    running = [container("api"), container("worker", state="exited")]
    assert plans.plan_stopped(running)["stopped"] == ["api"]
    assert plans.plan_absent(running)["removed"] == ["api", "worker"]
    assert not plans.has_changes(plans.plan_stopped([container("api", state="exited")]))
    assert not plans.has_changes(plans.plan_absent([]))


def test_after_a_stop_what_ran_has_exited_and_a_same_version_is_started_again() -> None:
    running = [
        container("api", health="healthy"),
        container("worker", state="exited"),
        container("cron", state="paused"),
    ]
    stopped = plans.after_stop(running)
    assert [(c["state"], c["health"]) for c in stopped] == [("exited", None), ("exited", None), ("exited", None)]
    assert stopped[1] is running[1] and running[0]["state"] == "running", "the listing itself is not changed"
    actions = plans.plan_present({"api": "h1", "worker": "h1", "cron": "h2"}, stopped, remove_orphans=False)
    assert (actions["started"], actions["recreated"]) == (["api", "worker"], ["cron"])


def test_observed_change_ignores_order_but_not_identity_or_state() -> None:
    a, b = container("api"), container("worker")
    assert not plans.observed_change([a, b], [b, a])
    assert plans.observed_change([a], [{**a, "state": "exited"}])
    assert plans.observed_change([a], [{**a, "id": "other"}])
    assert plans.observed_change([a], [])


@pytest.mark.parametrize(
    ("state", "health", "restarts", "verdict"),
    [
        ("running", "healthy", 0, "ready"),
        ("running", None, 0, "ready"),
        ("running", "starting", 0, "waiting"),
        ("created", None, 0, "waiting"),
        ("restarting", None, 0, "waiting"),
        ("restarting", None, 2, "failed"),
        ("exited", None, 0, "failed"),
        ("running", "unhealthy", 0, "failed"),
    ],
)
def test_container_verdicts(state: str, health: str | None, restarts: int, verdict: str) -> None:
    assert container_verdict(container("api", state=state, health=health, restart_count=restarts)) == verdict
