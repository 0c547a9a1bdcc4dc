"""Faults performed for real during releases, with traffic running (issue 13): the Docker daemon
restarted during a deploy, the candidate's container killed during a canary window, the LB container
restarted, PostgreSQL unreachable at expand, a migration failing in its second statement group, a
release longer than its lock's ttl, a run whose lock is taken over, the LB's admin socket missing
during a rollback, and a full disk when the ledger is written.

Each ends with users on a healthy color, the ledger consistent with the LB and the containers, the
lock released, and a re-run converging. The tests of the first part share one application and run in
order, each starting from the state the previous one left; the Docker daemon's restart has an application of
its own and runs alone (marked serial), followed on that application by a drill while the daemon is stopped
(SIGSTOP) for 4 s: HAProxy drops the log lines nobody reads, and the drill says so rather than miscounting.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from support.compose import docker
from support.load import Load
from support.release import ReleasedApp
from support.testbed import REPO_ROOT, TESTBED_DIR

pytestmark = pytest.mark.timeout(900)

RATE = 100
TESTBED_SH = REPO_ROOT / "tests" / "testbed" / "testbed.sh"
MIGRATIONS = REPO_ROOT / "examples" / "app" / "migrations"
OTHER = {"blue": "green", "green": "blue"}


# -- helpers ---------------------------------------------------------------------------------------
def traffic(app: ReleasedApp, seconds: float) -> Load:
    return Load(app.url + "/", rate=RATE, seconds=seconds, record=True).start()


def failed(load: Load) -> list[int]:
    return [s for s in load.answers if s != 200]


def failed_outside(load: Load, start: float, end: float) -> list:
    """The failed requests sent outside [start, end] (wall-clock seconds): those the fault does not explain."""
    return [a for a in load.records if a.status != 200 and not start <= a.at <= end]


def wait_for(what: str, ready: Callable[[], bool], run: subprocess.Popen | None = None, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if run is not None and run.poll() is not None:
            raise AssertionError(f"the playbook ended before {what}:\n{run.stdout.read()[-4000:]}")
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.1)


def lb_answers(app: ReleasedApp) -> bool:
    try:
        app.lb_servers()
    except AssertionError:
        return False
    return True


def finish(run: subprocess.Popen) -> tuple[int, str]:
    out, _err = run.communicate(timeout=600)
    return run.returncode, out


def step_names(app: ReleasedApp) -> list[str]:
    releases = [r for r in app.ledger().get("releases", []) if r["kind"] == "release"]
    return [s["name"] for s in releases[-1]["steps"]] if releases else []


def reached(app: ReleasedApp, version: str, step: str) -> Callable[[], bool]:
    def check() -> bool:
        releases = [r for r in app.ledger().get("releases", []) if r["kind"] == "release"]
        last = releases[-1] if releases else {}
        return last.get("version") == version and last.get("outcome") == "running" and step in step_names(app)

    return check


def answers(app: ReleasedApp, count: int = 30) -> collections.Counter:
    seen: collections.Counter = collections.Counter()
    with requests.Session() as session:
        for _request in range(count):
            resp = session.get(app.url + "/", timeout=5)
            seen[
                f"{resp.json()['color']} {resp.json()['version']}" if resp.status_code == 200 else resp.status_code
            ] += 1
    return seen


def assert_consistent(app: ReleasedApp) -> dict:
    """Users on the live color, the LB as the ledger says, the other color out of rotation, no lock."""
    ledger = app.ledger()
    live = ledger["live"]
    servers = app.servers()
    assert app.lock() is None, f"the lock was left behind: {app.lock()}"
    assert servers[f"api_{live}"]["weight"] == 256 and servers[f"api_{live}"]["state"] == "ready", servers
    assert servers[f"api_{live}"]["status"].startswith("UP"), servers
    assert servers[f"api_{OTHER[live]}"]["weight"] == 0, servers
    assert ledger["weights"] == app.weights(), (ledger["weights"], app.weights())
    assert app.containers(live), f"the live color {live} has no running container"
    version = ledger["colors"][live]["version"]
    assert answers(app) == {f"{live} {version}": 30}
    return ledger


def restart_docker() -> float:
    started = time.monotonic()
    subprocess.run(["bash", str(TESTBED_SH), "restart-docker"], check=True, capture_output=True, timeout=180)
    return time.monotonic() - started


def db_container(app: ReleasedApp) -> str:
    return f"{app.app}-data-db-1"


def psql(app: ReleasedApp, sql: str) -> str:
    return docker("exec", db_container(app), "psql", "-U", "demo", "-d", "demo", "-tAc", sql).stdout.strip()


# -- the shared application ------------------------------------------------------------------------
def faults_app(workdir) -> ReleasedApp:
    migrations = workdir / "migrations"
    shutil.copytree(MIGRATIONS, migrations)
    released = ReleasedApp(workdir, kind="fault", reports=False)
    # Every version up to the directory's highest (v1 and v2 both run on the expanded 0002).
    released.extra.update(switchyard_migrations_dir=str(migrations), switchyard_migrations_target="")
    released.migrations = migrations
    return released


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    """v2 live on green, v1 on blue: where the Docker daemon's restart below leaves its own application."""
    released = faults_app(tmp_path_factory.mktemp("faults"))
    try:
        released.play("release.yml", switchyard_version="v1")
        released.play("release.yml", switchyard_version="v2", switchyard_canary_steps=[100])
        yield released
    finally:
        released.down()


@pytest.fixture(scope="module")
def restarted_app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    """v1, then the serial tests below in order: v2 released across the daemon's restart, then drilled."""
    released = faults_app(tmp_path_factory.mktemp("restarted"))
    try:
        released.play("release.yml", switchyard_version="v1")
        yield released
    finally:
        released.down()


# The daemon's restart stops every other test's Docker calls: it runs alone (make test's serial part).
@pytest.mark.serial
def test_the_docker_daemon_restarted_while_the_candidate_is_deployed(restarted_app) -> None:
    """The daemon restarts (live-restore, as on a production host) just as the candidate's containers
    are created: whatever step the restart breaks, users stay on blue, and a re-run converges."""
    assert docker("info", "--format", "{{.LiveRestoreEnabled}}").stdout.strip() == "true"
    load = traffic(restarted_app, 240)
    run = restarted_app.start("release.yml", switchyard_version="v2")
    wait_for("green container", lambda: bool(restarted_app.containers_all("green")), run)
    restarted_at = time.time()
    took = restart_docker()
    rc, out = finish(run)
    print(f"daemon restarted in {took:.1f} s; release rc={rc}")
    if rc != 0:
        assert "Traffic is back on blue" in out, out[-3000:]
        assert restarted_app.last_release()["outcome"] in ("rolled_back", "failed"), restarted_app.last_release()
        assert_consistent(restarted_app)
        assert restarted_app.ledger()["live"] == "blue"
        restarted_app.play("release.yml", switchyard_version="v2")  # converges
    load.stop()
    ledger = assert_consistent(restarted_app)
    assert ledger["live"] == "green" and ledger["colors"]["green"]["version"] == "v2"
    # While the daemon starts it sets its NAT rules up again: the published port refuses connections
    # for a moment (Docker's own, not the release's). Nothing fails outside the restart.
    print(f"{len(failed(load))} of {len(load.answers)} requests failed: {collections.Counter(failed(load))}")
    assert not failed_outside(load, restarted_at, restarted_at + took + 1)
    assert len(failed(load)) <= RATE * 1.0, "more than a second of the restart"


def docker_stalled(seconds: float) -> None:
    """The Docker daemon stopped (SIGSTOP) then continued: containers run on, nobody reads their output."""
    pid = int((TESTBED_DIR / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


# Stopping the daemon stalls every other test's Docker calls: it runs alone, after the restart above (v2 live).
@pytest.mark.serial
def test_a_drill_while_the_docker_daemon_stalls_counts_the_lbs_dropped_log_lines(restarted_app) -> None:
    """HAProxy writes its log to stdout without blocking: while dockerd reads nothing, the pipe fills and HAProxy
    drops lines (and counts them). The drill's probes whose lines were dropped are of no known color: the drill
    still ends done, on the live color, with the drop in its record - not with a share under 100 %."""
    app = restarted_app
    assert (app.ledger()["live"], app.ledger()["previous"]) == ("green", "blue")
    before = app.lb_servers()
    # Long request lines fill the pipes quickly: some 200 KB a second for HAProxy's log.
    load = Load(app.url + "/?pad=" + "x" * 800, rate=200, seconds=120, record=True).start()
    run = app.start("drill.yml", switchyard_drill_full=True, switchyard_drill_hold_seconds=12)
    wait_for("the drill's shift", lambda: app.lb_servers()["blue"]["weight"] == 256, run, seconds=60)
    time.sleep(0.5)
    docker_stalled(4)
    rc, out = finish(run)
    load.stop()
    assert rc == 0, out[-4000:]
    assert re.search(r"the\s+LB\s+dropped\s+\d+\s+lines\s+of\s+its\s+request\s+log", out), out[-4000:]
    drill = app.ledger()["drills"][-1]
    print({k: drill.get(k) for k in ("outcome", "observed_percent", "probes", "lb_log_dropped", "rto_ms")})
    assert (drill["outcome"], drill["to"], drill["full"]) == ("done", "blue", True), drill
    assert drill["probes"]["failed"] == 0 and drill["probes"]["unlogged"] > 0, drill
    assert drill["lb_log_dropped"] >= drill["probes"]["unlogged"], drill
    assert drill["observed_percent"] == 100.0 and drill["failed_requests"] == 0, drill
    assert not failed(load), collections.Counter(failed(load))
    after = app.lb_servers()
    assert {c: (after[c]["weight"], after[c]["state"]) for c in after} == {
        c: (before[c]["weight"], before[c]["state"]) for c in before
    }
    assert app.lock() is None


def test_the_candidates_container_killed_during_a_canary_window(app) -> None:
    """Blue (v1, the candidate) dies at 10 %: the gate rolls back; only the requests blue had a share
    of until then fail; a re-run deploys blue again and promotes it."""
    load = traffic(app, 300)
    run = app.start("release.yml", switchyard_version="v1", switchyard_canary_window=8)
    wait_for("the 10 % step", reached(app, "v1", "canary-10"), run)
    killed_at = time.time()
    docker("kill", f"{app.app}-blue-api-1")
    rc, out = finish(run)
    ended_at = time.time()
    assert rc != 0 and "Traffic is back on green" in out, out[-3000:]
    ended = app.last_release()
    assert ended["outcome"] == "rolled_back", ended
    ledger = assert_consistent(app)
    assert ledger["live"] == "green" and app.servers()["api_blue"]["state"] == "maint"
    # At most the candidate's 10 % share of the requests sent between the kill and the end of the run.
    took = ended_at - killed_at
    bound = 0.1 * RATE * took * 1.5 + 5
    print(f"{len(failed(load))} failed ({took:.1f} s from the kill to the end; bound {bound:.0f})")
    assert len(failed(load)) <= bound, collections.Counter(failed(load))
    app.play("release.yml", switchyard_version="v1")  # the killed container is started again
    load.stop()
    ledger = assert_consistent(app)
    assert ledger["live"] == "blue"
    assert not failed_outside(load, killed_at, ended_at), "a failure the kill does not explain"


def test_the_lb_restarted_during_a_release(app) -> None:
    """The LB container restarts at 10 %: it comes back with the persisted weights; the gate sees its
    counters reset, discards that window and measures again; the release goes on to promote."""
    load = traffic(app, 240)
    run = app.start("release.yml", switchyard_version="v2", switchyard_canary_window=6)
    wait_for("the 10 % step", reached(app, "v2", "canary-10"), run)
    before = app.weights()
    started = time.monotonic()
    docker("restart", "--time", "10", f"{app.app}-lb-haproxy-1")
    restarted_in = time.monotonic() - started
    try:
        # The socket files outlive the process (the directory is mounted): wait for HAProxy to answer on them.
        wait_for("the LB answering again", lambda: lb_answers(app), seconds=30)
        assert app.weights() == before == {"blue": 230, "green": 26}, "weights come back as persisted"
    finally:
        rc, out = finish(run)  # a failure above must not leave the release (and its lock) to the next test
    assert rc == 0, out[-4000:]
    load.stop()
    release = app.last_release()
    assert release["outcome"] == "promoted"
    ledger = assert_consistent(app)
    assert ledger["live"] == "green"
    # Only connections the restart itself refused failed: no HTTP error from a server.
    errors = collections.Counter(failed(load))
    print(f"LB restarted in {restarted_in:.1f} s: {errors} of {len(load.answers)}")
    assert set(errors) <= {-1, 503}, errors
    assert sum(errors.values()) <= RATE * (restarted_in + 3), errors


def test_postgresql_unreachable_at_expand_changes_nothing(app) -> None:
    """The database refuses the runner's connections (a firewall between the Docker host and it): the
    release stops at expand, before any container or weight moves; users never notice."""
    (app.migrations / "0003_fault").mkdir()
    (app.migrations / "0003_fault" / "expand.sql").write_text(
        "CREATE TABLE fault_codes (id integer PRIMARY KEY, code text NOT NULL);\n"
        "INSERT INTO fault_codes VALUES (1, 'a'), (2, 'a');\n"
        "CREATE UNIQUE INDEX CONCURRENTLY fault_codes_code ON fault_codes (code);\n"
        "ALTER TABLE fault_codes ADD COLUMN note text;\n"
    )
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", db_container(app)
    ).stdout.split()[0]
    rule = ["OUTPUT", "-d", address, "-p", "tcp", "--dport", "5432", "-j", "REJECT", "--reject-with", "tcp-reset"]
    load = traffic(app, 120)
    before = app.weights()
    ledger = (app.state / "ledger.json").read_bytes()
    subprocess.run(["iptables", "-I", *rule], check=True)
    try:
        # The preflight's database check sees it first: refused before the lock, the ledger untouched.
        refused = app.play("release.yml", ok=False, switchyard_version="v1")
        assert "database:" in refused.stdout and "cannot connect" in refused.stdout, refused.stdout[-3000:]
        assert (app.state / "ledger.json").read_bytes() == ledger
        # The database lost between the preflight and the expand: the check turned off (in the inventory).
        app.inventory_vars["switchyard_preflight_skip"] = ["database"]
        result = app.play("release.yml", ok=False, switchyard_version="v1")
    finally:
        app.inventory_vars.pop("switchyard_preflight_skip", None)
        subprocess.run(["iptables", "-D", *rule], check=True)
    load.stop()
    assert "cannot connect to PostgreSQL" in result.stdout, result.stdout[-3000:]
    assert "Traffic is back on green" in result.stdout
    assert app.weights() == before and not failed(load)
    assert app.last_release()["outcome"] == "rolled_back"
    assert "deploy" not in step_names(app), "nothing was deployed"
    assert_consistent(app)


def test_a_migration_failing_in_its_second_group_resumes_there_once_fixed(app) -> None:
    """0003's unique index fails on duplicate codes after its first group committed: the release stops
    at expand, the message names the groups applied; with the data fixed, a re-run resumes at group 2."""
    load = traffic(app, 300)
    result = app.play("release.yml", ok=False, switchyard_version="v1")
    assert "group 2" in result.stdout and "resumes" in result.stdout, result.stdout[-4000:]
    assert psql(app, "SELECT count(*) FROM fault_codes") == "2", "group 1 stayed committed"
    assert psql(app, "SELECT to_regclass('fault_codes_code') IS NULL") == "t", "no invalid index left behind"
    assert_consistent(app)
    psql(app, "UPDATE fault_codes SET code = 'b' WHERE id = 2")
    app.play("release.yml", switchyard_version="v1")
    load.stop()
    assert psql(app, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'fault_codes'") == "3"
    ledger = assert_consistent(app)
    assert ledger["live"] == "blue" and "3" in ledger["migrations"]["applied"]
    assert not failed(load)


def test_a_release_longer_than_its_lock_ttl_keeps_its_lock(app) -> None:
    """An 8 s lock, a release of some 40 s: every step renews it, so another run is refused midway and
    no take-over is recorded."""
    takeovers = len(app.ledger()["takeovers"])
    load = traffic(app, 300)
    run = app.start("release.yml", switchyard_version="v2", switchyard_lock_ttl=8, switchyard_canary_window=5)
    wait_for("the lock", lambda: app.lock() is not None, run)
    first = app.lock()
    wait_for("the 50 % step", reached(app, "v2", "canary-50"), run)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    later = app.lock()
    assert now > first["expires_at"], "the release must outlast its first expiry before this point"
    assert later["token"] == first["token"] and later["expires_at"] > first["expires_at"], (first, later)
    other = app.play("rollback.yml", ok=False)
    assert "is held by" in other.stdout, other.stdout[-3000:]
    rc, out = finish(run)
    load.stop()
    assert rc == 0, out[-4000:]
    assert len(app.ledger()["takeovers"]) == takeovers
    assert assert_consistent(app)["live"] == "green"
    assert not failed(load)


def test_a_run_whose_lock_is_taken_over_stops_before_its_next_change(app) -> None:
    """rollback.yml forces its way in during a 10 % step (an operator's emergency brake): the release
    that lost its lock changes nothing afterwards and says so; traffic stays where the rollback put it."""
    load = traffic(app, 240)
    run = app.start("release.yml", switchyard_version="v1", switchyard_canary_window=10)
    wait_for("the 10 % step", reached(app, "v1", "canary-10"), run)
    lost = app.last_release()["id"]
    app.play("rollback.yml", switchyard_force_lock=True)
    after_rollback = app.weights()
    rc, out = finish(run)
    load.stop()
    assert rc != 0 and "This run LOST the release lock" in out, out[-4000:]
    assert after_rollback == app.weights() == {"blue": 0, "green": 256}
    assert app.servers()["api_blue"]["state"] == "maint"
    ledger = app.ledger()
    entry = [r for r in ledger["releases"] if r["id"] == lost][0]
    assert entry["outcome"] == "abandoned" and "force" in entry["reason"], entry
    assert ledger["takeovers"][-1]["previous_release_id"] == lost
    assert app.last_release("rollback")["outcome"] == "done"
    assert assert_consistent(app)["live"] == "green"
    assert not failed(load)


def test_the_admin_socket_missing_during_a_rollback(app) -> None:
    """The admin socket is gone: rollback.yml carries weights and states through a verified reload of
    the master, without a failed request, and records what HAProxy shows."""
    load = traffic(app, 300)
    app.play("release.yml", switchyard_version="v1")  # something to roll back: blue v1 live, green previous
    away = app.socket + ".away"
    os.rename(app.socket, away)
    try:
        result = app.play("rollback.yml")
    finally:
        os.rename(away, app.socket)  # the listener survives the reload: the file is all that was missing
    load.stop()
    assert "Moved all new traffic" in result.stdout
    assert app.weights() == {"blue": 0, "green": 256} and app.servers()["api_blue"]["state"] == "maint"
    assert app.last_release("rollback")["outcome"] == "done"
    assert assert_consistent(app)["live"] == "green"
    assert not failed(load), collections.Counter(failed(load))


# -- a full disk under the state directory -------------------------------------------------------------
@pytest.fixture
def small_disk_app(testbed, tmp_path) -> Iterator[ReleasedApp]:
    """An application whose state directory is a 4 MiB tmpfs (the LB's directory is elsewhere)."""
    released = ReleasedApp(tmp_path, kind="disk", reports=False)
    released.state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(released.state)], check=True)
    released.extra["switchyard_lb_dir"] = str(tmp_path / "lb")
    try:
        released.play("release.yml", switchyard_version="v1")
        yield released
    finally:
        released.down()
        subprocess.run(["umount", "--lazy", str(released.state)], check=False)


def test_a_full_disk_when_the_ledger_is_written(small_disk_app) -> None:
    """The state directory fills up during a canary window: the verdict cannot be recorded, traffic goes
    back on blue all the same, the lock is released (a file can be removed on a full disk), the play
    says what could not be written; with space again, a re-run converges."""
    app = small_disk_app
    load = traffic(app, 180)
    run = app.start("release.yml", switchyard_version="v2", switchyard_canary_window=6)
    wait_for("the 10 % step", reached(app, "v2", "canary-10"), run)
    filler = app.state / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
    rc, out = finish(run)
    assert rc != 0, out[-3000:]
    assert "No space left on device" in out and "the lock was released" in out, out[-4000:]
    assert app.lock() is None
    assert answers(app) == {"blue v1": 30}
    servers = app.servers()
    assert servers["api_blue"]["weight"] == 256 and servers["api_green"]["state"] == "maint"
    filler.unlink()
    app.play("release.yml", switchyard_version="v2")
    load.stop()
    ledger = assert_consistent(app)
    assert ledger["live"] == "green"
    assert not failed(load), collections.Counter(failed(load))
