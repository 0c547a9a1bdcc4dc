"""End to end, switchyard_strategy=bluegreen: the idle color deployed and smoke-tested through the canary header,
then ONE switch of 100 % with the previous color kept warm, and the gate judging the first window after the switch
(the warm color is its baseline, through the synthetic requests) - promoted, or rolled back at once under load.
On HAProxy and on Traefik (the LB kinds share the strategy; Nginx runs the A/B test's)."""

from __future__ import annotations

import collections

import pytest
from support.load import Load
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)


def colors(app: ReleasedApp, count: int = 20) -> collections.Counter:
    seen: collections.Counter = collections.Counter()
    for _request in range(count):
        seen[app.answer()["color"]] += 1
    return seen


@pytest.mark.parametrize("kind", ["haproxy", "traefik"])
def test_bluegreen_switches_once_keeps_the_previous_color_warm_and_rolls_back_a_failing_switch(
    kind, testbed, tmp_path
) -> None:
    app = ReleasedApp(tmp_path, kind="bg", reports=False, lb=kind)
    try:
        app.play("release.yml", switchyard_version="v1")

        # --check: the plan names the strategy and its one judged step, and nothing changes.
        checked = app.play("release.yml", "--check", switchyard_version="v2", switchyard_strategy="bluegreen")
        assert "bluegreen" in checked.stdout and '"weights_per_step": [' in checked.stdout.replace("'", '"')
        assert app.last_release()["version"] == "v1" and not app.containers("green")

        # v2 failing (30 % of its answers are 500): the first window after the switch says rollback, and every
        # request goes back to blue at once.
        traffic = Load(app.url + "/", rate=50, seconds=120).start()
        result = app.play(
            "release.yml",
            ok=False,
            switchyard_version="v2",
            switchyard_strategy="bluegreen",
            switchyard_candidate_env={"FAIL_RATE": "0.3"},
        )
        assert "canary gate at 100 % says rollback" in result.stdout, result.stdout[-3000:]
        assert "Traffic is back on blue" in result.stdout
        assert colors(app) == {"blue": 20} and app.answer()["version"] == "v1"
        release = app.last_release()
        assert release["strategy"] == "bluegreen" and release["outcome"] == "rolled_back"
        assert release["verdicts"][-1]["verdict"] == "rollback" and app.lock() is None
        traffic.stop()
        errors = [s for s in traffic.answers if s != 200]
        # Only the failing candidate's own answers, for one window: no connection error, no LB error.
        assert errors and all(s == 500 for s in errors), collections.Counter(errors)
        assert len(errors) < 0.1 * len(traffic.answers), (len(errors), len(traffic.answers))

        # v2 again, healthy: one switch under load, judged once after it; nobody saw a failure.
        traffic = Load(app.url + "/", rate=50, seconds=120).start()
        app.play("release.yml", switchyard_version="v2", switchyard_strategy="bluegreen")
        assert colors(app) == {"green": 20} and app.answer()["version"] == "v2"
        release = app.last_release()
        assert release["strategy"] == "bluegreen" and release["outcome"] == "promoted"
        assert [s["name"] for s in release["steps"] if s["name"].startswith("canary-")] == ["canary-100"]
        assert [(v["step"], v["verdict"]) for v in release["verdicts"]] == [("canary-100", "promote")]
        # The baseline of the switch's window is the warm previous color, measured by the synthetic requests.
        figures = release["verdicts"][0]["figures"]
        assert figures["baseline"]["name"] == "blue" and figures["baseline"]["requests"] > 0, figures
        assert figures["canary"]["requests"] > figures["baseline"]["requests"], figures
        # Kept warm: blue still runs, healthy, out of the split; a rollback is one weight change away.
        servers = app.lb_servers()
        assert servers["blue"]["weight"] == 0 and servers["blue"]["up"] and app.containers("blue"), servers
        traffic.stop()
        assert [s for s in traffic.answers if s != 200] == []
    finally:
        app.down()
