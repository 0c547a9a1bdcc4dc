"""End to end, the recreate strategy (planned maintenance) on HAProxy: v1 released; a recreate whose staging fails
(before the page) leaves v1 serving and its files as they were; then v1 recreated as v2 on the same color under
constant load - v2's files staged and its image pulled before the page goes on, only the maintenance page (503 with
Retry-After) answers during the outage, no connection fails, v2 answers after, the ledger has the outage and the
health time; a re-run changes nothing. Then a candidate that crashes on start:
the release fails, the page stays up, the ledger says failed, the lock is released, rollback.yml refuses and says how
to recreate the previous version, and a re-run with a good version converges. Then a recreate that fails before it
touches the color (its staged file removed as the staging writes it): the page never goes on, the color keeps its
record.
A bad strategy and --check change nothing. (The page itself on Nginx and Traefik: test_lb_maintenance.py.)"""

from __future__ import annotations

import collections
import contextlib
import shlex
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import DEMO_DIR
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)

# References this module made the host pull (testbed.fresh_repository): removed with the app.
PULLED: list[str] = []


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("recreate"), kind="rcr", reports=False)
    released.extra.update(switchyard_strategy="recreate", switchyard_maintenance_retry_after=5)
    try:
        yield released
    finally:
        released.down()
        for reference in PULLED:
            docker("rmi", reference, check=False)


def page(app: ReleasedApp) -> requests.Response:
    return requests.get(app.url + "/", timeout=5)


def task_outcome(stdout: str, name: str) -> tuple[int, str]:
    """(position in the play's output, first word of its result line: ok, changed, skipping...) of the task whose
    banner starts with name."""
    at = stdout.index(f"TASK [{name}")
    return at, stdout[at:].splitlines()[1].split(":")[0]


def color_env(app: ReleasedApp, directory: str) -> dict:
    """The variables of <state dir>/<directory>/color.env (values single-quoted, as the env_file filter writes them)."""
    lines = (app.state / directory / "color.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {key: shlex.split(value)[0] if value else "" for key, value in pairs}


def test_recreate_under_load_answers_only_the_maintenance_page_then_v2(app, testbed) -> None:
    app.play("release.yml", switchyard_version="v1")  # a first release: blue, as any strategy
    assert app.answer()["version"] == "v1"

    refused = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_strategy="bluish")
    assert "switchyard_strategy='bluish'" in refused.stdout and "canary, bluegreen, recreate, ab" in refused.stdout
    before = app.ledger()
    checked = app.play("release.yml", "--check", switchyard_version="v2")
    said = f"strategy recreate of blue: stage v2 beside {app.app}-blue (its files in blue.staged/, its images pulled)"
    assert said in checked.stdout and "still serves; then maintenance page on" in checked.stdout, checked.stdout[-3000:]
    assert app.ledger() == before and app.answer()["version"] == "v1", "neither the bad strategy nor --check changed"
    assert not (app.state / "blue.staged").exists(), "check mode staged nothing"

    # The staging fails (a Compose file Compose cannot render): before the page, before the stop - v1 serves on, its
    # directory untouched (the new files only went beside it).
    broken = app.workdir / "compose.broken.yaml"
    broken.write_text("services:\n  api:\n    image: ${SWITCHYARD_TEST_UNSET:?this file cannot be rendered}\n")
    failed = app.play(
        "release.yml",
        ok=False,
        switchyard_version="v2",
        switchyard_compose_files=[str(DEMO_DIR / "compose.base.yaml"), str(broken)],
    )
    assert "this file cannot be rendered" in failed.stdout and "was not touched" in failed.stdout, failed.stdout[-4000:]
    assert app.last_release()["outcome"] == "failed" and app.lock() is None
    assert app.answer()["version"] == "v1" and page(app).headers.get("X-Switchyard-Maintenance") is None
    assert color_env(app, "blue")["SWITCHYARD_VERSION"] == "v1" and not (app.state / "blue" / broken.name).exists()
    assert color_env(app, "blue.staged")["SWITCHYARD_VERSION"] == "v2"

    # v2 from a repository this host never pulled: the pull happens before the page goes on, not inside the outage.
    tag, pinned = testbed.fresh_repository("demo-app:v2")
    PULLED.append(pinned)
    load = Load(app.url + "/", rate=50, seconds=120, record=True).start()
    try:
        result = app.play("release.yml", "--diff", switchyard_version="v2", switchyard_images={"api": tag})
    finally:
        load.stop()
    pulled_at, pulled = task_outcome(result.stdout, "switchyard.release.stack : Pull the new version's images")
    page_at = task_outcome(result.stdout, "switchyard.release.stack : Maintenance page on")[0]
    assert pulled == "changed" and pulled_at < page_at, result.stdout[-6000:]
    # --diff compares the staged files with what runs (the same compose.base.yaml): no file shown as new.
    assert "+services:" not in result.stdout and "-services:" not in result.stdout, result.stdout[-6000:]
    assert app.ledger()["colors"]["blue"]["images"] == {"api": pinned}
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
    # health_s: compose up until healthy; stop_s: the old version's stop - both inside the outage.
    assert step["outage_ms"] > 0 and step["health_s"] > 0 and step["stop_s"] > 0
    assert step["health_s"] + step["stop_s"] < step["outage_ms"] / 1000
    # What the clients saw matches what the ledger says (generous: the load's own resolution is 20 ms).
    assert (max(paged) - min(paged)) * 1000 <= step["outage_ms"] + 1000
    assert ledger["live"] == "blue" and ledger["colors"]["blue"]["version"] == "v2"
    assert "Outage (the maintenance page up" in result.stdout
    # The staged files were put in place: the color's directory describes what runs, the staging one is empty.
    assert color_env(app, "blue")["SWITCHYARD_VERSION"] == "v2"
    assert list((app.state / "blue.staged").iterdir()) == []
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


def test_a_recreate_that_fails_before_it_touches_the_color_takes_the_page_off_and_keeps_its_record(app) -> None:
    """The staged color.env removed under the run as soon as the staging writes it: the staging's pull, which renders
    the staged files, refuses (the recreate module would too: it checks them before the page goes on and again right
    before the stop) - nothing is touched, the page never goes on. The rescue leaves v1 serving, and the ledger keeps
    the color's record (v1, live): any strategy may follow, and the next recreate replaces v1."""
    assert app.answer()["version"] == "v1"
    before = app.ledger()["colors"]["blue"]
    staged_env = app.state / "blue.staged" / "color.env"
    removed: list[float] = []
    paged: list[float] = []

    def remove_once_staged() -> None:
        deadline = time.monotonic() + 120
        with requests.Session() as session:
            while time.monotonic() < deadline and not (removed and paged):
                if staged_env.exists() and not removed:
                    staged_env.unlink()
                    removed.append(time.time())
                with contextlib.suppress(requests.RequestException):
                    if session.get(app.url + "/", timeout=2).headers.get("X-Switchyard-Maintenance") == "on":
                        paged.append(time.time())
                time.sleep(0.005)

    watcher = threading.Thread(target=remove_once_staged, daemon=True)
    watcher.start()
    failed = app.play("release.yml", ok=False, switchyard_version="v2")
    done_at = time.time()
    watcher.join(1)
    assert removed, "the staging never wrote color.env"
    assert not [at for at in paged if at < done_at], "the maintenance page went on"
    assert "color.env does not exist" in failed.stdout and "was not touched" in failed.stdout, failed.stdout[-4000:]
    assert "the maintenance page is off again and it serves as before" in failed.stdout, failed.stdout[-4000:]
    answer = page(app)
    assert answer.status_code == 200 and answer.json()["version"] == "v1"
    assert answer.headers.get("X-Switchyard-Maintenance") is None
    ledger = app.ledger()
    entry = app.last_release()
    assert entry["outcome"] == "failed" and "was not touched" in entry["reason"] and app.lock() is None
    assert "stop" not in [step["name"] for step in entry["steps"]], entry["steps"]
    assert ledger["colors"]["blue"] == before, "the color's record is what runs: v1, live"

    # Nothing refuses the next release: a recreate to v2 replaces v1 and converges.
    app.play("release.yml", switchyard_version="v2")
    step = next(s for s in app.last_release()["steps"] if s["name"] == "recreate")
    assert app.answer()["version"] == "v2" and step["replaced"] == "v1", step
