"""End to end: the contract and the rollback when the old color is not where the ledger expects it.

- a contract refused after it stopped the old color starts it again (healthy, in maint), so the
  rollback the ledger promises still works;
- rollback.yml starts a previous color that was stopped (by hand, or an interrupted contract) and
  waits until it is healthy before moving any traffic;
- a candidate rolled back at a canary step is retired by the next contract, never left running
  under a schema it cannot use;
- nothing leaks a secret: every run is at -vvv --diff with a known database password, registry
  credentials and a gate probe's Authorization header, and neither what Ansible printed (custom stats,
  i.e. the set_stats artifacts, included) nor any file under the state directory holds one.

The tests share one application and run in order.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator

import psycopg2
import pytest
from support.compose import docker
from support.load import Load
from support.release import TEST_SETTINGS, ReleasedApp

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    workdir = tmp_path_factory.mktemp("paths")
    released = ReleasedApp(workdir, kind="path", reports=False)
    released.extra["switchyard_rollback_window"] = 0
    with_known_secrets(released, workdir)
    try:
        released.play("release.yml", switchyard_version="v1")
        load = Load(released.url + "/", rate=100, seconds=120).start()
        released.play("release.yml", switchyard_version="v2")
        load.stop()
        yield released
    finally:
        released.down()


def with_known_secrets(app: ReleasedApp, workdir) -> None:
    """Every run at -vvv --diff, with custom stats shown, and secrets the leak test looks for: the database
    password (switchyard_secrets content), the registry login the Docker host's client uses (a Docker
    config with an auth for the testbed's registry, as `docker login` writes it) and an Authorization
    header on the gate's http_probe (switchyard_gate.sources)."""
    app.secrets = {
        "database password": f"db-{secrets.token_hex(12)}",
        "registry password": f"reg-{secrets.token_hex(12)}",
        "probe token": f"probe-{secrets.token_hex(12)}",
    }
    login = f"switchyard:{app.secrets['registry password']}"
    app.secrets["registry auth (base64)"] = base64.b64encode(login.encode()).decode()
    docker_config = workdir / "docker-config"
    docker_config.mkdir()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {"127.0.0.1:5000": {"auth": app.secrets["registry auth (base64)"]}}})
    )
    app.flags = ["-vvv", "--diff"]
    app.environment = {"DOCKER_CONFIG": str(docker_config), "ANSIBLE_SHOW_CUSTOM_STATS": "true"}
    app.extra["switchyard_secrets"] = [
        {"name": "db_password", "owner": 0, "group": 10001, "mode": "0440", "content": app.secrets["database password"]}
    ]
    app.extra["switchyard_gate"] = {
        **TEST_SETTINGS["switchyard_gate"],
        "sources": {
            "lb": {"kind": "haproxy", "dir": str(app.state / "lb"), "container": f"{app.app}-lb-haproxy-1"},
            "http_probe": {
                "url": f"{app.url}/health",
                "headers": {"Authorization": f"Bearer {app.secrets['probe token']}"},
                "count": 3,
            },
        },
    }


def forms(secret: str) -> dict[str, str]:
    """The secret as it would appear printed: plain, and base64 at each of the three byte alignments it can
    have inside a longer encoded text (a slurp, an AWX artifact), without the characters that depend on its
    neighbours."""
    found = {"plain": secret}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode().rstrip("=")
        start = (0, 2, 3)[shift]
        end = len(encoded) - (0 if (shift + len(secret)) % 3 == 0 else (shift + len(secret)) % 3 + 1)
        found[f"base64+{shift}"] = encoded[start:end]
    return found


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
        # The report role in the contract's failure path, with a bad variable: a warning, never the failure said.
        result = app.play("contract.yml", ok=False, switchyard_report_enabled=True, switchyard_report_before="soon")
    finally:
        session.close()
    assert "sessions" in result.stdout and "blue was started again" in result.stdout, result.stdout[-4000:]
    warning = result.stdout[result.stdout.index("WARNING: no report of this run") :][:1500]
    assert "switchyard_report_before" in warning and "Check the report's variables" in warning, warning
    assert result.stdout.index("WARNING: no report of this run") < result.stdout.rindex("blue was started again")
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


def test_no_secret_is_printed_or_stored_at_vvv_diff(app) -> None:
    """The issue's leak test, over everything this module ran: two releases (a canary), a refused contract,
    rollbacks, a paused release rolled back, a contract, and status.yml last. Only the database password's
    own file (<state dir>/secrets/db_password) may hold it."""
    app.play("status.yml")
    secret_file = app.state / "secrets" / "db_password"
    assert app.secrets["database password"] in secret_file.read_text(), "the known password was not used"
    output = "\n".join(app.outputs)
    assert "CUSTOM STATS" in output and "ESTABLISH LOCAL CONNECTION" in output, "not the -vvv output with the stats"
    verdicts = [s.get("verdict") or {} for r in app.ledger()["releases"] for s in r.get("steps", [])]
    assert "http_probe" in json.dumps(verdicts), "the gate's probe with the Authorization header did not run"

    places = {"ansible output": output}
    for path in sorted(app.state.rglob("*")):
        if path.is_file() and path != secret_file:
            places[str(path.relative_to(app.state))] = path.read_bytes().decode(errors="replace")
    for secret in app.secrets.values():  # the base64 forms are found wherever the secret is encoded
        for before in ("", "a", "ab"):
            text = base64.b64encode(f"{before}{secret}\n".encode()).decode()
            assert sum(form in text for form in forms(secret).values()) == 1, (secret, before)
    leaks = {
        f"{what} ({form}) in {where}": text.count(encoded)
        for what, secret in app.secrets.items()
        for form, encoded in forms(secret).items()
        for where, text in places.items()
        if encoded in text
    }
    (app.state.parent / "ansible-output.txt").write_text(output)  # to look at when it fails
    assert not leaks, leaks
