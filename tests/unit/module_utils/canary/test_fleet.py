"""The fleet gate's judgement (canary/fleet.py) fed with real canary_gate results: two LB stacks of the testbed standing
for two hosts, recorded by support/record_gate_results.py (tests/unit/fixtures/canary_gate-fleet/README.md)."""

from __future__ import annotations

import copy
import json
import random

import pytest
from support.modules import run_module
from support.recorded import FLEET_GATE

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge, pool
from ansible_collections.switchyard.release.plugins.module_utils.canary.fleet import FleetError, judge_fleet

# The thresholds the hosts' gates were recorded with (support/record_gate_results.py).
BUSY = {"min_requests": 100, "min_samples": 50, "max_p95_ms": 200}
QUIET = {"min_requests": 60, "min_samples": 50, "max_p95_ms": 200}
DEFAULTS = {k: v.get("default") for k, v in judge.limits_argument_spec().items() if k in judge.LIMITS}


def limits(**given) -> dict:
    return {**DEFAULTS, **given}


def recorded(name: str) -> dict:
    return json.loads((FLEET_GATE / f"{name}.json").read_text())


def by_metric(result: dict) -> dict:
    return {(m["metric"], m.get("host")): m for m in result["metrics"]}


def test_all_hosts_good_promote_with_the_pooled_requests() -> None:
    hosts = {"host-a": recorded("busy-good-host-a"), "host-b": recorded("busy-good-host-b")}
    result = judge_fleet(hosts, limits(**BUSY))
    assert result["verdict"] == "promote", result["reason"]
    assert result["hosts"] == {"host-a": "promote", "host-b": "promote"}
    assert result["unobserved"] == []
    error_rate = by_metric(result)[("error_rate", None)]
    canary_n = sum(h["pool"]["routes"][0]["canary"]["requests"] for h in hosts.values())
    assert error_rate["canary_n"] == canary_n and error_rate["hosts"] == 2 and error_rate["route"] == "api"
    assert result["figures"]["canary"]["requests"] == canary_n and result["figures"]["canary"]["name"] == "green"
    assert [r["route"] for r in result["routes"]] == ["api"]
    evidence = result["evidence"]
    assert evidence["verdict"] == "promote" and evidence["route_figures"]["api"]["canary"]["requests"] == canary_n
    assert evidence["hosts"]["host-b"]["counted_as"] == "promote"
    assert (
        evidence["hosts"]["host-b"]["figures"]["canary"]["requests"] == hosts["host-b"]["figures"]["canary"]["requests"]
    )
    assert len(json.dumps(evidence)) < 8000  # registered at every step, kept in each host's ledger


@pytest.mark.parametrize("bad", ["busy-bad-host-b", "busy-bad-failed-host-b"])
def test_one_host_whose_canary_errs_rolls_the_fleet_back_naming_it(bad: str) -> None:
    """busy-bad-failed is the same host's gate with fail_on=rollback: a failed task with a verdict counts with it."""
    hosts = {"host-a": recorded("busy-good-host-a"), "host-b": recorded(bad)}
    result = judge_fleet(hosts, limits(**BUSY))
    assert result["verdict"] == "rollback"
    assert result["hosts"] == {"host-a": "promote", "host-b": "rollback"}
    host = by_metric(result)[("host", "host-b")]
    assert host["status"] == "fail" and host["reason"].startswith(
        "host-b rolled back on its own - route api: error_rate"
    )
    assert result["reason"].startswith("host: host-b rolled back on its own - route api: error_rate:")
    assert ("host", "host-a") not in by_metric(result)
    assert result["evidence"]["hosts"]["host-b"]["counted_as"] == "rollback"


def test_a_bad_host_diluted_in_the_pool_still_rolls_back() -> None:
    """Three good hosts and one bad: the pooled error rate may pass, the bad host's own verdict does not."""
    good = recorded("busy-good-host-a")
    hosts = {f"good-{n}": copy.deepcopy(good) for n in range(3)} | {"bad": recorded("busy-bad-host-b")}
    result = judge_fleet(hosts, limits(**{**BUSY, "max_error_rate": 0.2}))
    pooled = by_metric(result)[("error_rate", None)]
    assert pooled["status"] == "pass", pooled  # about 5 % over the pool, limit 20 %
    assert result["verdict"] == "rollback" and by_metric(result)[("host", "bad")]["status"] == "fail"


def test_a_slow_canary_too_quiet_on_each_host_is_rolled_back_on_the_pooled_p95() -> None:
    hosts = {"host-a": recorded("quiet-slow-host-a"), "host-b": recorded("quiet-slow-host-b")}
    assert {h["verdict"] for h in hosts.values()} == {"hold"}  # each alone: too few requests and latencies
    result = judge_fleet(hosts, limits(**QUIET))
    assert result["verdict"] == "rollback", result["reason"]
    p95 = by_metric(result)[("p95_ms", None)]
    assert p95["status"] == "fail" and p95["canary"] >= 300 and p95["canary_n"] == 72 and p95["hosts"] == 2
    assert "p95_ms: canary p95" in result["reason"]
    assert result["hosts"] == {"host-a": "hold", "host-b": "hold"}
    assert result["routes"][0]["verdict"] == "rollback" and "p95_ms" in result["routes"][0]["not_passed"]


def test_hosts_holding_only_for_too_little_traffic_promote_together() -> None:
    hosts = {"host-a": recorded("quiet-good-host-a"), "host-b": recorded("quiet-good-host-b")}
    assert {h["verdict"] for h in hosts.values()} == {"hold"}
    assert {h["pool"]["own_verdict"] for h in hosts.values()} == {"promote"}
    result = judge_fleet(hosts, limits(**QUIET))
    assert result["verdict"] == "promote", result["reason"]
    assert all(m["status"] == "pass" for m in result["metrics"])
    assert result["evidence"]["hosts"]["host-a"] | {"figures": None} == {
        "verdict": "hold",
        "reason": hosts["host-a"]["reason"],
        "counted_as": "promote",
        "figures": None,
    }


def test_the_same_quiet_hosts_hold_when_the_pool_is_still_too_small() -> None:
    result = judge_fleet(
        {"host-a": recorded("quiet-good-host-a"), "host-b": recorded("quiet-good-host-b")}, limits(min_requests=300)
    )
    assert result["verdict"] == "hold"
    assert by_metric(result)[("error_rate", None)]["status"] == "inconclusive"


def test_a_hold_the_pool_cannot_lift_holds_the_fleet_naming_the_host() -> None:
    held = recorded("quiet-good-host-b")
    held["pool"]["own_verdict"], held["pool"]["own_reason"] = "hold", "route api: hold - container_health: starting"
    result = judge_fleet({"host-a": recorded("quiet-good-host-a"), "host-b": held}, limits(**QUIET))
    assert result["verdict"] == "hold"
    assert (
        by_metric(result)[("host", "host-b")]["reason"]
        == "host-b holds on its own - route api: hold - container_health: starting"
    )


@pytest.mark.parametrize(
    ("observation", "why"),
    [
        (None, "no observation (the gate did not run there)"),
        (
            {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"},
            "its gate was skipped (Conditional result was False)",
        ),
        (
            {"failed": True, "msg": "sources.lb: the LB did not answer"},
            "its gate failed before a verdict: sources.lb: the LB did not answer",
        ),
    ],
    ids=["missing", "skipped", "failed"],
)
def test_a_host_not_observed_holds_the_fleet_naming_it(observation, why) -> None:
    observations = {"host-a": recorded("busy-good-host-a")}
    if observation is not None:
        observations["host-b"] = observation
    result = judge_fleet(observations, limits(**BUSY), hosts=["host-a", "host-b"])
    assert result["verdict"] == "hold"
    assert result["unobserved"] == [f"host host-b: {why}"]
    assert result["reason"] == f"observation: host-b not observed: {why}"
    assert result["hosts"] == {"host-a": "promote", "host-b": None}
    assert by_metric(result)[("observation", "host-b")]["status"] == "inconclusive"
    assert result["evidence"]["hosts"]["host-b"] == {
        "verdict": None,
        "reason": f"not observed: {why}",
        "counted_as": "hold",
        "figures": {},
    }


def test_a_host_whose_last_window_was_discarded_is_not_observed_and_the_pool_is_judged_without_it() -> None:
    discarded = recorded("quiet-slow-host-b")
    discarded["pool"]["routes"][0].update(baseline=None, canary=None)
    result = judge_fleet({"host-a": recorded("quiet-slow-host-a"), "host-b": discarded}, limits(**QUIET))
    assert result["verdict"] == "hold"
    assert result["unobserved"] == ["host host-b: route api: its last window was discarded (nothing seen)"]
    assert by_metric(result)[("error_rate", None)]["hosts"] == 1


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: r.pop("pool"), "observations.host-a.pool: missing"),
        (lambda r: r["pool"].update(version=2), "observations.host-a.pool.version=2"),
        (
            lambda r: r["pool"]["routes"][0]["canary"].update(errors=10**6),
            "observations.host-a.pool.routes[0].canary: errors=1000000 is more than requests",
        ),
        (
            lambda r: r["pool"]["routes"][0]["canary"].update(latency_ms=[[1, "x"]]),
            "observations.host-a.pool.routes[0].canary.latency_ms: a histogram",
        ),
        (lambda r: r.update(verdict="maybe"), "observations.host-a.verdict='maybe'"),
        (lambda r: r.pop("verdict"), "observations.host-a: not a canary_gate result (no verdict)"),
    ],
    ids=["no-pool", "version", "errors", "histogram", "verdict", "no-verdict"],
)
def test_a_value_that_is_not_a_gate_result_is_an_error_naming_it(change, said) -> None:
    value = recorded("busy-good-host-a")
    change(value)
    with pytest.raises(FleetError) as caught:
        judge_fleet({"host-a": value}, limits(**BUSY))
    assert caught.value.msg.startswith(said), caught.value.msg


def test_observations_of_a_host_outside_the_batch_are_refused() -> None:
    with pytest.raises(FleetError, match=r"observations: host-b not in hosts \(host-a\)"):
        judge_fleet(
            {"host-a": recorded("busy-good-host-a"), "host-b": recorded("busy-good-host-b")},
            limits(**BUSY),
            hosts=["host-a"],
        )


# -- the pool is exact: judging the histograms is judging the samples ------------------------------------------------


def raw_samples(seed: int, slow: int = 0) -> dict:
    """A side's samples in log order: latencies as HAProxy logs them (whole ms), some errors."""
    rng = random.Random(seed)
    latencies = [max(0, int(rng.gauss(4 + slow, 3))) for _n in range(400)]
    return {"requests": 400, "errors": rng.randint(0, 6), "latencies_ms": latencies}


def test_a_histogram_is_judged_as_its_samples_and_hosts_add_up() -> None:
    hosts = [(raw_samples(1), raw_samples(2, slow=3)), (raw_samples(3), raw_samples(4, slow=3))]
    limits_ = limits(min_requests=100, min_samples=50, max_p95_ms=9, latency_tolerance_ms=1)
    for baseline, canary in hosts:
        raw = judge.compare(canary, baseline, limits_, "lb")
        from_pool = judge.compare(
            *(
                {**side, "latencies_ms": pool.expand(pool.histogram(side["latencies_ms"])[0])}
                for side in (canary, baseline)
            ),
            limits_,
            "lb",
        )
        assert from_pool == raw
    together = {
        role: {
            "requests": sum(h[i]["requests"] for h in hosts),
            "errors": sum(h[i]["errors"] for h in hosts),
            "latencies_ms": [v for h in hosts for v in h[i]["latencies_ms"]],
        }
        for i, role in enumerate(("baseline", "canary"))
    }
    observations = {}
    for n, (baseline, canary) in enumerate(hosts):
        result = recorded("busy-good-host-a")
        result["pool"]["routes"][0].update(baseline=pool.side_pool(baseline)[0], canary=pool.side_pool(canary)[0])
        observations[f"host-{n}"] = result
    fleet = judge_fleet(observations, limits_)
    pooled = [
        {**{k: v for k, v in m.items() if k not in ("route", "hosts")}, "reason": m["reason"].split(" (pooled over")[0]}
        for m in fleet["metrics"]
    ]
    assert pooled == judge.compare(together["canary"], together["baseline"], limits_, "lb")
    assert {m["metric"] for m in pooled} >= {"error_rate", "p95_ms", "latency_ratio"}


def test_more_distinct_latencies_than_max_bins_are_rounded_to_whole_milliseconds() -> None:
    fine = [n / 1000 for n in range(pool.MAX_BINS + 1)]  # microseconds, as Traefik logs them
    pairs, exact = pool.histogram(fine)
    assert not exact and pairs == [[0, 500], [1, 1]]
    assert pool.histogram([1, 1, 2]) == ([[1, 2], [2, 1]], True)
    assert pool.histogram(None) == (None, True)


def test_own_verdict_leaves_only_too_little_traffic_to_the_pool() -> None:
    too_little = judge.metric("error_rate", judge.INCONCLUSIVE, "too little traffic", source="lb", route="api")
    failing = judge.metric("error_rate", judge.FAIL, "above", source="lb", route="api")
    discarded = judge.metric("counters", judge.INCONCLUSIVE, "window discarded", source="lb", route="api")
    prometheus = judge.metric("error_rate", judge.INCONCLUSIVE, "no data", source="prometheus")
    limits_ = (0, 0, "hold")
    for metrics, expected in (
        ([too_little], "promote"),
        ([failing], "rollback"),
        ([too_little, discarded], "hold"),
        ([too_little, prometheus], "hold"),
    ):
        measurement = {"metrics": metrics, "verdict": judge.verdict(metrics)}
        assert pool.own_verdict([measurement], ["api"], limits_)[0] == expected, metrics


# -- the module ----------------------------------------------------------------------------------------------------


def test_the_module_judges_in_check_mode_and_echoes_no_observation_back() -> None:
    observations = {"host-a": recorded("busy-good-host-a"), "host-b": recorded("busy-bad-host-b")}
    args = {"observations": observations, "hosts": ["host-a", "host-b"], **BUSY}
    result = run_module("fleet_gate", args, check=True)
    assert result["failed"] and result["verdict"] == "rollback" and result["changed"] is False
    assert result["msg"].startswith(
        "fleet gate: rollback - host: host-b rolled back on its own - route api: error_rate"
    )
    echoed = result["invocation"]["module_args"]["observations"]
    assert echoed == {"host-a": {"verdict": "promote"}, "host-b": {"verdict": "rollback"}}
    never = run_module("fleet_gate", {**args, "fail_on": "never"})
    assert not never.get("failed") and never["verdict"] == "rollback" and never["hosts"]["host-b"] == "rollback"


def test_the_module_refuses_bad_thresholds_naming_them() -> None:
    result = run_module("fleet_gate", {"observations": {"host-a": recorded("busy-good-host-a")}, "confidence": 2})
    assert result["failed"] and result["msg"].startswith("confidence=2.0: use a probability between 0.5 and 1")
    result = run_module("fleet_gate", {"observations": {}, "fail_on": "sometimes"})
    assert result["failed"] and "fail_on" in result["msg"] and "rollback, never" in result["msg"]
