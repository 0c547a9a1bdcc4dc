"""End to end, switchyard_strategy=ab: variant B for a fixed share of users, each user kept on one variant by the
LB's sticky cookie; the run ends with the experiment running (the lock released), status shows it with each
variant's figures, a later run observes it again, another version is refused until it ends, and it ends with
B promoted - or, when B fails, with the gate rolling it back. On HAProxy and on Nginx (its cookie-keyed split)."""

from __future__ import annotations

import collections
import time

import pytest
import requests
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)

COOKIE = "SWITCHYARD_VARIANT"
USERS = 40


def users(app: ReleasedApp, sessions: list | None = None) -> list[set]:
    """The colors each user saw over 5 requests: USERS new users, or the given sessions (their cookie jars)."""
    seen = []
    for session in sessions if sessions is not None else [requests.Session() for _user in range(USERS)]:
        seen.append({session.get(app.url + "/", timeout=5).json()["color"] for _request in range(5)})
    return seen


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
def test_ab_runs_an_experiment_on_a_share_of_users_until_b_is_promoted_or_fails(kind, testbed, tmp_path) -> None:
    app = ReleasedApp(tmp_path, kind="ab", reports=False, lb=kind)
    app.extra["switchyard_lb_sticky_cookie"] = COOKIE
    ab = {"switchyard_strategy": "ab", "switchyard_ab_percent": 30}
    try:
        app.play("release.yml", switchyard_version="v1")
        refused = app.play(
            "release.yml",
            ok=False,
            switchyard_version="v2",
            switchyard_ab_percent=0,
            **{k: v for k, v in ab.items() if k != "switchyard_ab_percent"},
        )
        assert "switchyard_ab_percent=0: the share of users on variant B" in refused.stdout, refused.stdout[-2000:]

        if kind == "haproxy":
            # B failing (30 % of its answers are 500): the gate ends the experiment, every user back on A.
            result = app.play(
                "release.yml", ok=False, switchyard_version="v2", switchyard_candidate_env={"FAIL_RATE": "0.3"}, **ab
            )
            assert "canary gate at 30 % says rollback" in result.stdout, result.stdout[-3000:]
            release = app.last_release()
            assert release["strategy"] == "ab" and release["outcome"] == "rolled_back" and app.lock() is None
            assert all(seen == {"blue"} for seen in users(app))

        # --check: the plan says it is an experiment, and nothing changes.
        checked = app.play("release.yml", "--check", switchyard_version="v2", **ab)
        assert "ab, 30 % of users on green (cookie SWITCHYARD_VARIANT)" in checked.stdout, checked.stdout[-3000:]

        # The experiment starts under load and is left running: the run ends, the lock is released.
        traffic = Load(app.url + "/", rate=50, seconds=180, record=True).start()
        phases = []

        def play(name: str, *args, **kwargs):
            start = time.time()
            try:
                return app.play(*args, **kwargs)
            finally:
                phases.append((name, start, time.time()))

        started = play("the experiment's start", "release.yml", switchyard_version="v2", **ab)
        assert "A/B experiment" in started.stdout and "running" in started.stdout, started.stdout[-3000:]
        release = app.last_release()
        assert release["strategy"] == "ab" and release["outcome"] == "running" and app.lock() is None
        assert release["experiment"] == {"share": 30, "key": f"cookie {COOKIE}"}
        assert [(v["step"], v["verdict"]) for v in release["verdicts"]] == [("canary-30", "promote")]
        # Each user stays on one variant; about 30 % of the users are on B (binomial: 12 of 40 +- 3).
        sessions = [requests.Session() for _user in range(USERS)]
        seen = users(app, sessions)
        assert all(len(colors) == 1 for colors in seen), seen
        on_b = sum(1 for colors in seen if colors == {"green"})
        assert 3 <= on_b <= 24, collections.Counter(frozenset(c) for c in seen)

        status = play("status", "status.yml")
        assert f"A/B experiment {release['id']}: variant B v2 on green for 30 % of users" in status.stdout
        assert "A blue v1:" in status.stdout and "B green v2:" in status.stdout, status.stdout[-3000:]

        # Another version is refused while it runs; a run of the same version observes it again.
        refused = play("another version refused", "release.yml", ok=False, switchyard_version="v1", **ab)
        assert "An A/B experiment of" in refused.stdout and "switchyard_ab_promote=true" in refused.stdout
        first_window = release["verdicts"][0]["window"]
        play("the experiment observed again", "release.yml", switchyard_version="v2", **ab)
        release = app.last_release()
        assert release["outcome"] == "running" and app.lock() is None
        # The step's verdict is the new window's (the ledger keeps the last observation of the experiment).
        assert [v["step"] for v in release["verdicts"]] == ["canary-30"]
        # The same users are on the same variants after that run (it rendered the LB again, same cookie).
        assert users(app, sessions) == seen
        assert release["verdicts"][0]["window"]["start"] > first_window["end"], (first_window, release["verdicts"])

        # Promoted: every user on B, nobody saw a failure.
        play("B promoted", "release.yml", switchyard_version="v2", switchyard_ab_promote=True)
        release = app.last_release()
        assert release["outcome"] == "promoted" and app.answer()["version"] == "v2"
        assert all(seen == {"green"} for seen in users(app))
        traffic.stop()
        assert traffic.failures(phases) == []
    finally:
        app.down()
