"""End to end: the contract and the rollback when the old color is not where the ledger expects it.

- a contract refused after it stopped the old color starts it again (healthy, in maint), so the
  rollback the ledger promises still works;
- rollback.yml starts a previous color that was stopped (by hand, or an interrupted contract) and
  waits until it is healthy before moving any traffic;
- a candidate rolled back at a canary step is retired by the next contract, never left running
  under a schema it cannot use.

The tests share one application and run in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("paths"), kind="path")
    released.extra["switchyard_rollback_window"] = 0
    try:
        released.play("release.yml", switchyard_version="v1")
        load = Load(released.url + "/", rate=100, seconds=120).start()
        released.play("release.yml", switchyard_version="v2")
        load.stop()
        yield released
    finally:
        released.down()


def db_session(app: ReleasedApp, application_name: str):
    """A session on the application's database, as the named color's code would open it."""
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", f"{app.app}-data-db-1"
    ).stdout.split()[0]
    password = (app.state / "secrets" / "db_password").read_text().strip()
    return psycopg2.connect(
        host=address, dbname="demo", user="demo", password=password, application_name=application_name
    )


def healthy(app: ReleasedApp, color: str) -> bool:
    ids = app.containers(color)
    return bool(ids) and all(
        docker("inspect", "--format", "{{.State.Health.Status}}", i).stdout.strip() == "healthy" for i in ids
    )


def test_a_contract_refused_after_the_stop_starts_the_old_color_again(app) -> None:
    assert (app.ledger()["live"], app.ledger()["previous"]) == ("green", "blue")
    session = db_session(app, f"{app.app}-blue-api")  # matches switchyard_db_sessions_from "%-{color}-%"
    try:
        result = app.play("contract.yml", ok=False)
    finally:
        session.close()
    assert "sessions" in result.stdout and "blue was started again" in result.stdout, result.stdout[-4000:]
    assert healthy(app, "blue"), "the old color must run again, healthy"
    assert app.servers()["api_blue"]["state"] == "maint" and app.weights() == {"blue": 0, "green": 256}
    ledger = app.ledger()
    assert (ledger["live"], ledger["previous"]) == ("green", "blue")
    assert ledger["colors"]["blue"]["state"] == "standby" and not ledger["migrations"]["contracted"]
    assert app.last_release("contract")["outcome"] == "failed" and app.lock() is None


def test_rollback_starts_a_stopped_previous_color_before_moving_traffic(app) -> None:
    docker("compose", "-p", f"{app.app}-blue", "stop")  # as an interrupted contract leaves it
    assert not app.containers("blue")
    load = Load(app.url + "/", rate=100, seconds=60).start()
    app.play("rollback.yml")
    load.stop()
    assert healthy(app, "blue") and app.weights() == {"blue": 256, "green": 0}
    assert app.answer()["color"] == "blue"
    ledger = app.ledger()
    assert (ledger["live"], ledger["previous"]) == ("blue", "green") and app.lock() is None
    assert not [s for s in load.answers if s != 200], "traffic moved before blue was healthy"
    app.play("rollback.yml")  # back to green v2 for the next test
    assert app.answer()["color"] == "green"


def test_rollback_of_a_color_whose_containers_are_gone_says_why_and_moves_nothing(app) -> None:
    docker("compose", "-p", f"{app.app}-blue", "down")
    result = app.play("rollback.yml", ok=False)
    assert "has no containers (it was removed" in result.stdout, result.stdout[-3000:]
    assert "The LB shows" in result.stdout and "The lock is released" in result.stdout
    assert app.weights() == {"blue": 0, "green": 256} and app.lock() is None
    assert app.ledger()["live"] == "green"


def test_a_candidate_rolled_back_at_a_canary_step_is_retired_by_the_next_contract(app) -> None:
    """The issue's case: v1 released again on blue, paused at 10 %, rolled back; contract.yml must not
    contract 0002 under a running v1: it retires blue (stopped, removed, recorded) first."""
    load = Load(app.url + "/", rate=100, seconds=180).start()
    app.play("release.yml", switchyard_version="v1", switchyard_stop_after_step=10)
    app.play("rollback.yml")
    assert app.ledger()["colors"]["blue"]["state"] in ("candidate", "failed")
    app.play("contract.yml")
    load.stop()
    assert not app.containers_all("blue"), "the rolled-back candidate must be removed"
    ledger = app.ledger()
    assert ledger["colors"]["blue"]["state"] == "retired" and ledger["live"] == "green"
    assert "2" in ledger["migrations"]["contracted"]
    assert app.answer()["version"] == "v2"
    assert not [s for s in load.answers if s != 200]
