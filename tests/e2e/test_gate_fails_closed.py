"""End to end: the canary gate is turned off only on purpose. A window that is not a positive number is
refused before anything changes; switchyard_gate_enabled=false releases without a gate, and every canary
step says so in the ledger and in the output; a judged step keeps each route's verdict and the figures.

The tests share one application and run in order (each one after the first needs the live color before it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("gate"), kind="gate", reports=False)
    try:
        yield released
    finally:
        released.down()


@pytest.mark.parametrize("window", ["", 0])
def test_a_window_that_is_not_a_positive_number_is_refused_before_anything_changes(app, window) -> None:
    """An empty AWX survey field or a 0 used to turn the gate off without a word."""
    result = app.play("release.yml", ok=False, switchyard_version="v1", switchyard_canary_window=window)
    assert "switchyard_canary_window" in result.stdout and "switchyard_gate_enabled" in result.stdout, result.stdout[
        -3000:
    ]
    assert not (app.state / "ledger.json").exists() and not (app.state / "release.lock").exists()
    assert not app.containers("blue") and not app.containers("lb")


def test_a_release_with_the_gate_disabled_records_each_step_as_not_judged(app) -> None:
    app.play("release.yml", switchyard_version="v1")  # the first release has no canary step
    result = app.play(
        "release.yml", switchyard_version="v2", switchyard_gate_enabled=False, switchyard_canary_window=""
    )
    release = app.last_release()
    assert release["outcome"] == "promoted" and not release["verdicts"], release
    canary_steps = [s for s in release["steps"] if s["name"].startswith("canary-")]
    assert [s["name"] for s in canary_steps] == ["canary-10", "canary-50", "canary-100"], release["steps"]
    assert all(s.get("gate") == "disabled" for s in canary_steps), canary_steps
    for percent in (10, 50, 100):
        assert f"canary-{percent} NOT JUDGED: the canary gate is disabled" in result.stdout, result.stdout[-3000:]
    assert "Observe the candidate against the live color" not in result.stdout


def test_a_judged_step_keeps_each_route_and_the_figures_in_the_ledger(app) -> None:
    load = Load(app.url + "/", rate=100, seconds=60).start()
    try:
        # v2's image again under another version label (the demo's v3 needs a schema this test does not apply).
        app.play(
            "release.yml",
            switchyard_version="v2.1",
            switchyard_images={"api": "127.0.0.1:5000/switchyard/demo-app:v2"},
            switchyard_migrations_target=2,
        )
    finally:
        load.stop()
    release = app.last_release()
    assert release["outcome"] == "promoted" and [v["step"] for v in release["verdicts"]] == ["canary-10", "canary-50"]
    for verdict in release["verdicts"]:
        assert verdict["routes"] == [{"route": "api", "verdict": verdict["verdict"], "not_passed": []}], verdict
        assert verdict["window"]["start"] < verdict["window"]["end"]
        error_rate = {m["metric"]: m for m in verdict["metrics"]}["error_rate"]
        assert error_rate["route"] == "api" and error_rate["limit"] == 0.05, error_rate
        assert error_rate["canary_n"] >= 15 and error_rate["baseline_n"] >= 15 and error_rate["canary"] is not None
    assert not any(s.get("gate") for s in release["steps"]), "judged steps are not marked disabled"
