"""The release_summary filter on a ledger built by the real transitions and lock, the LB's view parsed
from HAProxy 2.6.12's recorded answers, and the containers as Docker 26.1.5 lists them (recorded)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ansible.errors import AnsibleFilterError
from support.recorded import DOCKER, HAPROXY

from ansible_collections.switchyard.release.plugins.filter.release_summary import release_summary
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.parsers import (
    parse_servers_state,
    parse_stat,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.weights import server_view
from ansible_collections.switchyard.release.plugins.module_utils.release import transitions as tr
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import empty_ledger
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import public_lock, take_lock
from ansible_collections.switchyard.release.plugins.module_utils.release.weights import canary_weights

T0 = datetime(2026, 11, 26, 17, 0, 0, tzinfo=timezone.utc)  # noqa: UP017
V1 = "127.0.0.1:5000/switchyard/demo-app@sha256:a63e465dd088d5132330824eb6b097621d83b716bec24ec06c5e35cfacaee89c"
V2 = "127.0.0.1:5000/switchyard/demo-app@sha256:" + "b2" * 32
TOKEN = "token-of-r3-0123456789"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def released(ledger: dict, rid: str, version: str, image: str, start: int, level: int) -> dict:
    ledger = tr.begin(ledger, rid, at(start), owner="ops@ctl", version=version, images={"api": image})
    live = ledger["live"]
    color = [r for r in ledger["releases"] if r["id"] == rid][0]["color"]
    ledger = tr.record_step(ledger, rid, {"name": "deploy", "deployed": True, "images": {"api": image}}, at(start + 1))
    ledger = tr.record_step(ledger, rid, {"name": "expand", "migrations_applied": [str(level)]}, at(start + 1))
    ledger = tr.record_step(ledger, rid, {"name": "promote", "migrations_level": level}, at(start + 2))
    return tr.promote(ledger, rid, at(start + 2), color=color, weights=canary_weights(100, live, color))


@pytest.fixture
def ledger() -> dict:
    """v1 promoted on blue, v2 rolled back by its gate on green - what the recorded LB shows (blue 256, green
    drained), then v3 promoted on green and v4 rolled back on blue, for the history."""
    ledger = released(empty_ledger("shop"), "r1", "v1", V1, 0, 1)
    ledger = tr.begin(ledger, "r2", at(10), owner="ops@ctl", version="v2", images={"api": V2})
    ledger = tr.record_step(ledger, "r2", {"name": "deploy", "deployed": True}, at(11))
    reason = "canary gate at 10 % says rollback: error rate 0.3"
    return tr.rollback(ledger, "r2", "blue", at(12), reason=reason, weights={"blue": 256, "green": 0})


@pytest.fixture
def servers() -> dict:
    """The traffic module's servers, from HAProxy's recorded answers (api_blue ready 256, api_green drain)."""
    state = parse_servers_state((HAPROXY / "show-servers-state.txt").read_text())["be_api"]
    stat = parse_stat((HAPROXY / "show-stat-be_api.csv").read_text())
    return {"api": {c: server_view(state[f"api_{c}"], stat.get(("be_api", f"api_{c}"))) for c in ("blue", "green")}}


def containers() -> list[dict]:
    recorded = [json.loads(line) for line in (DOCKER / "ps.ndjson").read_text().splitlines() if line.strip()]
    # The stack role labels each container with its color (the recording predates the label).
    return [{**c, "Labels": c["Labels"] + ",io.switchyard.color=" + c["Project"].rsplit("-", 1)[-1]} for c in recorded]


def test_the_first_lines_say_what_runs_where(ledger, servers) -> None:
    got = release_summary(ledger, servers=servers, containers=containers())
    lines = got["lines"]
    assert lines[0] == "shop: live blue v1, previous none"
    # HAProxy's own status words (the recording's servers resolve no DNS name: MAINT (resolution)).
    assert lines[1] == (
        "  blue: live v1 (api sha256:a63e465dd088) - weight 256, MAINT (resolution), 0 sessions"
        " - containers 1/1 running, 1 healthy"
    )
    assert lines[2].startswith("  green: failed v2 (api sha256:b2b2b2b2b2b2) - weight 0, MAINT (resolution) (drain), ")
    assert lines[2].endswith(" - no containers")  # the recording has blue's only
    assert got["live"] == {"color": "blue", "version": "v1", "images": {"api": V1}}


def test_releases_newest_first_with_outcome_and_reason_then_lock_schema_report(ledger) -> None:
    ledger = released(ledger, "r3", "v3", V2, 20, 2)
    lines = release_summary(ledger, last=2)["lines"]
    assert lines[0] == "shop: live green v3, previous blue"
    assert "lock: free" in lines
    start = lines.index("last 2 releases:")
    assert lines[start + 1] == "  r3  release v3 on green: promoted (2026-11-26T17:22:00Z)"
    assert lines[start + 2] == (
        "  r2  release v2 on green: rolled_back - canary gate at 10 % says rollback: error rate 0.3"
        " (2026-11-26T17:12:00Z)"
    )
    assert lines[start + 3] == "schema: level 2 (the live color's); applied 1, 2; contracted none"
    assert lines[-1] == "report: no report yet"


def test_the_lock_shows_holder_and_expiry_never_its_token(ledger) -> None:
    lock, _takeover = take_lock(None, "shop", "r4", "awx@job-41", 600, at(30), "dockerhost", 4242, TOKEN)
    assert lock["token"] == TOKEN
    for given in (lock, public_lock(lock)):
        got = release_summary(ledger, lock=given, lock_state="held")
        assert "lock: held by awx@job-41 (release r4) until 2026-11-26T17:40:00Z" in got["lines"]
        assert TOKEN not in json.dumps(got)
    expired = release_summary(ledger, lock=lock, lock_state="expired")["lines"]
    assert any(line.startswith("lock: expired - was held by awx@job-41") for line in expired)


def test_the_newest_report_and_its_controller_copy() -> None:
    host = [
        {"path": "/var/lib/switchyard/shop/reports/r1.html", "mtime": 100.0},
        {"path": "/var/lib/switchyard/shop/reports/r2.html", "mtime": 300.0},
        {"path": "/var/lib/switchyard/shop/reports/r0.html", "mtime": 200.0},
    ]
    controller = [{"path": "/srv/reports/dockerhost/r1.html", "mtime": 900.0}]
    got = release_summary(empty_ledger("shop"), reports={"host": host, "controller": controller})
    assert got["report"] == {"host": "/var/lib/switchyard/shop/reports/r2.html", "controller": ""}
    controller.append({"path": "/srv/reports/dockerhost/r2.html", "mtime": 10.0})
    got = release_summary(empty_ledger("shop"), reports={"host": host, "controller": controller})
    assert got["report"]["controller"] == "/srv/reports/dockerhost/r2.html"
    assert got["lines"][-1] == (
        "report: /var/lib/switchyard/shop/reports/r2.html (controller copy: /srv/reports/dockerhost/r2.html)"
    )


def test_a_host_never_released_to() -> None:
    got = release_summary(empty_ledger("shop"))
    assert got["lines"][0] == "shop: nothing live (never released on this host)"
    assert got["live"] == {"color": "", "version": "", "images": {}}
    assert "no releases yet" in got["lines"] and "schema: level unknown" in got["lines"][-2]


@pytest.mark.parametrize(
    ("args", "named"),
    [(("not a ledger",), "expected the ledger"), (({}, None, "taken"), "lock_state must be free, held or expired")],
)
def test_bad_input_is_named(args, named) -> None:
    with pytest.raises(AnsibleFilterError, match=named):
        release_summary(*args)


def test_a_running_ab_experiment_is_shown_with_each_variant_of_the_gate_s_last_window() -> None:
    ledger = released(empty_ledger("shop"), "r1", "v1", V1, 0, 1)
    ledger = tr.begin(
        ledger,
        "r2",
        at(10),
        owner="ops@ctl",
        version="v2",
        strategy="ab",
        experiment={"share": 20, "key": "cookie SV"},
    )
    ledger = tr.record_step(ledger, "r2", {"name": "deploy", "deployed": True}, at(11))
    verdict = {
        "verdict": "promote",
        "reason": "route api: promote - all 1 measurement(s) passed",
        "figures": {
            "baseline": {"name": "blue", "requests": 400, "error_rate": 0.0025, "p95_ms": 4},
            "canary": {"name": "green", "requests": 100, "error_rate": 0.0, "p95_ms": 5},
        },
    }
    weights = canary_weights(20, "blue", "green")
    ledger = tr.record_step(ledger, "r2", {"name": "canary-20", "weights": weights, "verdict": verdict}, at(12))
    ledger = tr.record_step(ledger, "r2", {"name": "pause-20", "after": 20}, at(13))
    lines = release_summary(ledger)["lines"]
    assert (
        "A/B experiment r2: variant B v2 on green for 20 % of users (cookie SV), since 2026-11-26T17:10:00Z"
    ) in lines
    assert "  A blue v1: 400 requests, error rate 0.25%, p95 4 ms" in lines
    assert "  B green v2: 100 requests, error rate 0.00%, p95 5 ms" in lines
    assert any(line.startswith("  r2  release (ab) v2 on green: running") for line in lines), lines
    # While a run holds the lock it is moving the experiment (observing it again, or promoting it).
    held = release_summary(ledger, lock_state="held")["lines"]
    assert any(line.endswith("- a run is moving it now") for line in held), held
    # Promoted, it is no longer an experiment.
    ledger = tr.promote(ledger, "r2", at(20), color="green", weights=canary_weights(100, "blue", "green"))
    assert not any(line.startswith("A/B experiment") for line in release_summary(ledger)["lines"])


def test_the_last_drill_with_its_rto_and_failures_once_there_is_one(ledger) -> None:
    assert not [line for line in release_summary(ledger)["lines"] if "drill" in line]
    drill = {
        "to": "blue",
        "from": "green",
        "version": "v1",
        "percent": 10,
        "full": False,
        "rto_ms": 41.6,
        "back_ms": 12.2,
        "failed_requests": 0,
        "outcome": "done",
        "reason": None,
    }
    ledger = tr.record_drill(ledger, {**drill, "id": "d1"}, datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc))  # noqa: UP017
    ledger = tr.record_drill(
        ledger,
        {
            **drill,
            "id": "d2",
            "full": True,
            "percent": 100,
            "rto_ms": None,
            "failed_requests": 7,
            "outcome": "failed",
            "reason": "blue went DOWN on route api during the hold",
        },
        datetime(2026, 12, 4, 9, 5, tzinfo=timezone.utc),  # noqa: UP017
    )
    lines = release_summary(ledger)["lines"]
    said = (
        "last drill: d2 all new traffic to blue (v1) and back to green - RTO n/a, back 12 ms, 7 failed requests: "
        "failed - blue went DOWN on route api during the hold (2026-12-04T09:05:00Z)"
    )
    assert [line for line in lines if "drill" in line] == [said]
    assert lines[lines.index(said) + 1].startswith("schema: "), "after the releases, before the schema"


def test_a_recreate_shows_its_outage() -> None:
    entry = {
        "id": "r9",
        "kind": "release",
        "version": "v2",
        "color": "blue",
        "strategy": "recreate",
        "outcome": "promoted",
        "finished_at": "2026-12-04T10:00:00Z",
        "steps": [{"name": "stop"}, {"name": "recreate", "outage_ms": 8249.6, "health_s": 7.55}],
    }
    ledger = {"app": "shop", "live": "blue", "colors": {}, "releases": [entry, {**entry, "id": "r10", "steps": []}]}
    lines = release_summary(ledger)["lines"]
    assert (
        "  r9  release v2 on blue (recreate: outage 8.2 s, healthy in 7.5 s): promoted (2026-12-04T10:00:00Z)" in lines
    )
    assert "  r10  release v2 on blue (recreate): promoted (2026-12-04T10:00:00Z)" in lines
