"""End to end: releases under constant load, through benchmarks/release_under_load.py --quick (the
real playbooks on the local inventory while 100 requests/s go through the LB, every request recorded).

Targets (issue 13): no failed request during a canary release, a rollback, or a promotion followed by
contract and retirement; during a failed canary only the candidate's own answers fail, while it has a
share, and once the gate has rolled it back every answer comes from the live color."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.testbed import REPO_ROOT

# Its figures are the measurement of record: it has the machine to itself (make test's serial part).
pytestmark = [pytest.mark.timeout(330), pytest.mark.serial]


def test_releases_under_constant_load_meet_the_targets(testbed, tmp_path) -> None:
    out = tmp_path / "under_load.json"
    bench = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "release_under_load.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=False,
    )
    print(bench.stdout)
    assert bench.returncode == 0, f"{bench.stdout[-4000:]}\n{bench.stderr[-4000:]}"
    canary, rollback, contract, failed = json.loads(out.read_text())["runs"][0]["scenarios"]

    assert canary["ledger"][-1]["outcome"] == "promoted" and canary["live_after"] != canary["live_before"]
    assert rollback["ledger"][-1]["outcome"] == "done" and rollback["live_after"] == canary["live_before"]
    assert [e["outcome"] for e in contract["ledger"]] == ["promoted", "done"], contract["ledger"]
    for scenario in (canary, rollback, contract):
        assert scenario["requests"] > 0.8 * 100 * scenario["seconds"], scenario["requests"]  # the load did run
        assert scenario["failed"] == 0, (scenario["scenario"], scenario["failed_by_kind"], scenario["failed_by_color"])

    candidate, live = failed["candidate"], failed["live_after"]
    assert failed["ledger"][-1]["outcome"] == "rolled_back" and live == failed["live_before"] != candidate
    assert failed["failed"] > 0, "FAIL_RATE=0.3 on a 10 % share: some requests must have failed"
    stray = [
        f for f in failed["failed_requests"] if f["color"] != candidate and not (f["color"] is None and f["in_share"])
    ]
    assert failed["failed_not_candidate"] == 0 and not stray, (
        f"failures not answered by the candidate {candidate} nor during its share: {stray[:20]}"
    )
    figures = failed["rollback"]
    assert figures["verdict_to_lb_100_s"] is not None, figures
    assert set(figures["after_lb_100"]) == {live}, figures["after_lb_100"]
    assert set(failed["after_playbooks"]) == {live}, failed["after_playbooks"]
    print(
        f"failed canary: {failed['failed']} failed of {failed['requests']} ({failed['failed_by_color']}); "
        f"verdict -> LB at 100 % on {live}: {figures['verdict_to_lb_100_s']} s"
    )
