"""End to end: a quiet service (no traffic at all) is judged on the gate's synthetic requests through the LB,
which its log counts: a release is promoted on them and its ledger entry keeps the figures of each color with
the synthetic share; a candidate that answers them 500 gets a rollback verdict from them alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.modules import run_module
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(600)

# One judged step, short: 10 synthetic requests a second to each color for 3 s is 30 each (min_requests 15).
QUIET = {
    "switchyard_canary_steps": [50, 100],
    "switchyard_gate_hold_retries": 0,
    "switchyard_gate_synthetic_rate": 10,
}


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("synthetic"), kind="syn")
    try:
        yield released
    finally:
        released.down()


def test_a_quiet_service_is_judged_on_synthetic_probes(app) -> None:
    """v1 answers every request 500 (nobody noticed: no traffic); v2, the fix, is released with no traffic
    running and promoted on the synthetic sample, which shows v1's errors; then the gate, aimed at v1 (kept
    ready for a rollback) as the candidate, rolls it back on its synthetic requests alone."""
    app.play("release.yml", switchyard_version="v1", switchyard_candidate_env={"FAIL_RATE": "1"})
    app.play("release.yml", switchyard_version="v2", **QUIET)  # no traffic is running
    release = app.last_release()
    assert release["outcome"] == "promoted", release
    (verdict,) = release["verdicts"]
    assert verdict["step"] == "canary-50" and verdict["verdict"] == "promote", verdict
    for side, color in (("baseline", "blue"), ("canary", "green")):
        figures = verdict["figures"][side]
        assert figures["name"] == color and figures["synthetic_sent"] >= 25, figures
        # Nothing else reached the LB in the window: the sample is the synthetic requests.
        assert figures["requests"] >= 20 and figures["synthetic_share"] > 0.9, figures
        # The LB's log tells them apart (their query's marker): the few real requests are not mixed in.
        assert figures["synthetic_requests"] >= 20 and figures["real_requests"] < 15, figures
        assert figures["p95_ms"] is not None and figures["throughput_rps"] > 5, figures
        assert verdict["route_figures"]["api"][side]["requests"] == figures["requests"]
    canary, baseline = verdict["figures"]["canary"], verdict["figures"]["baseline"]
    assert canary["errors"] == canary["synthetic_failed"] == 0, canary
    assert baseline["synthetic_failed"] == baseline["synthetic_sent"] and baseline["error_rate"] > 0.9, baseline
    error_rate = {m["metric"]: m for m in verdict["metrics"]}["error_rate"]
    assert error_rate["canary_n"] == canary["synthetic_requests"] and error_rate["test"] == "threshold", error_rate
    assert error_rate["sample"] == "synthetic", error_rate
    assert verdict["measurements"][0]["figures"] == verdict["figures"]

    # The quiet candidate that answers 500 (v1 on blue, still ready) is rolled back on the synthetic sample.
    judged = run_module(
        "canary_gate",
        {
            "baseline": "green",
            "canary": "blue",
            "window": 2,
            "min_requests": 15,
            "min_samples": 15,
            "sources": {
                "lb": {"dir": str(app.state / "lb"), "container": f"{app.app}-lb-haproxy-1", "route": "api"},
                "synthetic": {"url": app.url, "rate": 10},
            },
        },
    )
    assert judged.get("failed") and judged["verdict"] == "rollback" and "error_rate" in judged["msg"], judged
    candidate = judged["figures"]["canary"]
    assert candidate["synthetic_failed"] == candidate["synthetic_sent"] == 20, candidate
    assert candidate["requests"] >= 15 and candidate["error_rate"] == 1.0 and candidate["synthetic_share"] > 0.9
    assert app.answer()["version"] == "v2", "the live color answers"
