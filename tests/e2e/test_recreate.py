"""End to end, the recreate strategy (planned maintenance) on HAProxy: v1 released, then recreated as v2 on the same
color under constant load - only the maintenance page (503 with Retry-After) answers during the outage, no connection
fails, v2 answers after, the ledger has the outage; a re-run changes nothing. Then a candidate that crashes on start:
the release fails, the page stays up, the ledger says failed, the lock is released, rollback.yml refuses and says how
to recreate the previous version, and a re-run with a good version converges. A bad strategy and --check change
nothing. (The page itself on Nginx and Traefik: tests/integration/test_lb_maintenance.py.)"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import requests
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("recreate"), kind="rcr", reports=False)
    released.extra.update(switchyard_strategy="recreate", switchyard_maintenance_retry_after=5)
    try:
        yield released
    finally:
        released.down()


def page(app: ReleasedApp) -> requests.Response:
    return requests.get(app.url + "/", timeout=5)


def test_recreate_under_load_answers_only_the_maintenance_page_then_v2(app) -> None:
    app.play("release.yml", switchyard_version="v1")  # a first release: blue, as any strategy
    assert app.answer()["version"] == "v1"

    refused = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_strategy="bluish")
    assert "switchyard_strategy='bluish'" in refused.stdout and "canary, bluegreen, recreate, ab" in refused.stdout
    before = app.ledger()
    checked = app.play("release.yml", "--check", switchyard_version="v2")
    assert "strategy recreate of blue: maintenance page on" in checked.stdout, checked.stdout[-3000:]
    assert app.ledger() == before and app.answer()["version"] == "v1", "neither the bad strategy nor --check changed"

    load = Load(app.url + "/", rate=50, seconds=120, record=True).start()
    try:
        result = app.play("release.yml", switchyard_version="v2")
    finally:
        load.stop()
    kinds = collections.Counter(
        "page" if a.maintenance else f"{a.kind} {a.version}" if a.status == 200 else a.kind for a in load.records
    )
    assert set(kinds) <= {"ok v1", "ok v2", "page"}, kinds  # no connection error, no other status
    assert kinds["page"] > 0 and kinds["ok v2"] > 0, kinds
    last_v1 = max(a.at for a in load.records if a.version == "v1")
    first_v2 = min(a.at for a in load.records if a.version == "v2")
    assert last_v1 < first_v2, "v1 and v2 never both answered: the old version stopped before the new one served"
    paged = [a.at for a in load.records if a.maintenance]
    assert last_v1 <= min(paged) and max(paged) <= first_v2

    ledger = app.ledger()
    entry = app.last_release()
    assert entry["strategy"] == "recreate" and entry["outcome"] == "promoted" and entry["color"] == "blue"
    step = next(s for s in entry["steps"] if s["name"] == "recreate")
    assert step["outage_ms"] > 0 and step["health_s"] > 0
    # What the clients saw matches what the ledger says (generous: the load's own resolution is 20 ms).
    assert (max(paged) - min(paged)) * 1000 <= step["outage_ms"] + 1000
    assert ledger["live"] == "blue" and ledger["colors"]["blue"]["version"] == "v2"
    assert "Outage (the maintenance page up" in result.stdout
    assert app.containers("green") == [], "no second color"

    again = app.play("release.yml", switchyard_version="v2")
    assert "already live on blue: nothing to release" in again.stdout


def test_a_candidate_that_crashes_leaves_the_page_up_and_a_good_version_converges(app) -> None:
    failed = app.play(
        "release.yml",
        ok=False,
        switchyard_version="v1",
        switchyard_health_timeout=20,
        switchyard_candidate_env={"CRASH_ON_START": "1"},
    )
    assert "was STOPPED" in failed.stdout and "maintenance page" in failed.stdout, failed.stdout[-4000:]
    answer = page(app)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.headers["X-Switchyard-Maintenance"] == "on"
    entry = app.last_release()
    assert entry["outcome"] == "failed" and entry["strategy"] == "recreate", entry
    assert app.lock() is None, "the lock is released"
    assert app.ledger()["colors"]["blue"]["state"] == "failed"

    rollback = app.play("rollback.yml", ok=False)
    assert "recreated blue in place" in rollback.stdout and "switchyard_strategy=recreate" in rollback.stdout
    canary = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_strategy="canary")
    assert "failed: the old version's containers are gone" in canary.stdout

    app.play("release.yml", switchyard_version="v1")
    assert app.answer()["version"] == "v1" and app.last_release()["outcome"] == "promoted"
    assert app.ledger()["colors"]["blue"]["state"] == "live"
