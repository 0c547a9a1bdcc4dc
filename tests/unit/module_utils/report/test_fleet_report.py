"""The fleet's page from recorded ledger entries: which host ended on what, who failed where, who sent nothing."""

from __future__ import annotations

import json
from pathlib import Path

from support.modules import run_module

from ansible_collections.switchyard.release.plugins.module_utils.report import collect
from ansible_collections.switchyard.release.plugins.module_utils.report.fleet import fleet_report, render_fleet

FIXTURES = Path(__file__).parents[2] / "fixtures" / "report"
ENTRIES = json.loads((FIXTURES / "ledger-entries.json").read_text())


def host_report(kind, live, **changes):
    entry = {**json.loads(json.dumps(ENTRIES[kind])), **changes}
    report = collect.collect("demo", entry, [], collect.epoch(entry["finished_at"]) + 5)
    report["live"] = live
    return report


PROMOTED = {"color": "green", "version": "v2"}


def test_every_host_promoted_is_one_consistent_line_with_each_hosts_page():
    reports = {h: host_report("promoted", PROMOTED, id=f"r-{h}") for h in ("h1", "h2", "h3")}
    fleet = fleet_report("demo", ["h1", "h2", "h3"], reports, active=["h1", "h2", "h3"], now="t")
    assert fleet["ok"] and fleet["consistent"] and fleet["missing"] == []
    assert fleet["line"] == "demo: v2 on every host (3: h1, h2, h3)"
    assert fleet["outcomes"] == {"promoted": ["h1", "h2", "h3"]}
    assert [h["page"] for h in fleet["hosts"]] == ["r-h1.html", "r-h2.html", "r-h3.html"]
    assert fleet["run"] == {"kinds": ["release"], "first_release_id": "r-h1"}
    steps = {s["name"]: s for s in fleet["steps"]}
    assert list(steps) == [s["name"] for s in ENTRIES["promoted"]["steps"]]
    assert steps["canary-10"]["gate"]["verdict"] == "promote"
    assert {h: c["outcome"] for h, c in steps["canary-10"]["hosts"].items()} == dict.fromkeys(reports, "promote")
    page = render_fleet(fleet)
    assert 'href="r-h2.html"' in page and "v2 on every host" in page and 'class="ok"' in page


def test_a_host_rolled_back_and_a_host_unreachable_are_named():
    reports = {
        "h1": host_report("rolled_back", {"color": "blue", "version": "v1"}, id="r-h1"),
        "h2": host_report("rolled_back", {"color": "blue", "version": "v1"}, id="r-h2"),
    }
    fleet = fleet_report("demo", ["h1", "h2", "h3"], reports, active=["h1", "h2"], now="t")
    assert not fleet["ok"]
    assert fleet["outcomes"] == {"rolled_back": ["h1", "h2"]}
    assert fleet["missing"] == [{"host": "h3", "why": "failed or unreachable before its report"}]
    h1 = fleet["hosts"][0]
    assert h1["failed_step"] == "canary-10" and "error rate 40.00%" in h1["reason"]
    assert h1["live"] == {"color": "blue", "version": "v1"}
    assert {s["name"]: s["hosts"]["h2"]["outcome"] for s in fleet["steps"]}["canary-10"] == "rollback"
    page = render_fleet(fleet)
    assert 'class="banner"' in page and "h3: failed or unreachable before its report" in page


def test_hosts_that_ended_on_different_versions_disagree():
    reports = {
        "h1": host_report("promoted", PROMOTED, id="r-h1"),  # an earlier wave
        "h2": host_report("rolled_back", {"color": "blue", "version": "v1"}, id="r-h2"),
        "h3": host_report("promoted", PROMOTED, id="r-h3"),
    }
    fleet = fleet_report("demo", ["h1", "h2", "h3"], reports, active=["h1", "h3"], now="t")
    assert not fleet["consistent"] and fleet["disagree"] == ["h2"]
    assert fleet["versions"] == {"v2": ["h1", "h3"], "v1": ["h2"]}
    assert "not on v2: h2" in fleet["line"]


def test_a_host_with_nothing_to_do_is_on_the_page_as_unchanged():
    # What roles/release/tasks/main.yml notes for a host where the version is live already (it leaves the play).
    unchanged = {"release": {"kind": "release", "version": "v2", "outcome": "unchanged"}, "live": PROMOTED}
    reports = {"h1": unchanged, "h2": host_report("promoted", PROMOTED, id="r-h2")}
    fleet = fleet_report("demo", ["h1", "h2"], reports, active=["h2"], now="t")
    assert fleet["ok"] and fleet["missing"] == [] and fleet["outcomes"] == {"promoted": ["h2"], "unchanged": ["h1"]}
    assert fleet["hosts"][0]["page"] == ""
    # A host still in the play without a report: not said to have failed.
    waiting = fleet_report("demo", ["h1", "h2"], {"h2": reports["h2"]}, active=["h1", "h2"], now="t")
    why = "no report in this run (not in a batch yet, or still in its rescue)"
    assert waiting["missing"] == [{"host": "h1", "why": why}]


def test_waves_judged_apart_keep_each_hosts_verdict():
    promoted = host_report("promoted", PROMOTED, id="r-h1")
    rolled_back = host_report("rolled_back", {"color": "blue", "version": "v1"}, id="r-h2")
    fleet = fleet_report("demo", ["h1", "h2"], {"h1": promoted, "h2": rolled_back}, active=["h1"], now="t")
    canary = next(s for s in fleet["steps"] if s["name"] == "canary-10")
    assert canary["gate"] is None and canary["judged"]
    assert canary["hosts"]["h1"]["gate"]["verdict"] == "promote"
    assert canary["hosts"]["h2"]["gate"]["verdict"] == "rollback"
    page = render_fleet(fleet)
    assert "judged apart, per host" in page and "error rate 40.00%" in page


def test_every_value_is_escaped():
    hostile = "<script>alert(1)</script>"
    reports = {"h1": host_report("rolled_back", {"color": "blue", "version": hostile}, id="r-1", reason=hostile)}
    page = render_fleet(fleet_report("demo", [hostile, "h1"], reports, active=["h1"], now="t"))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_the_module_writes_the_page_once_and_says_unchanged_after(tmp_path):
    reports = [{"host": h, "report": host_report("promoted", PROMOTED, id=f"r-{h}")} for h in ("h1", "h2")]
    args = {"mode": "fleet", "app": "demo", "hosts": ["h1", "h2"], "reports": reports, "dest": str(tmp_path / "f.html")}
    planned = run_module("release_report", args, check=True)
    assert planned["changed"] and not (tmp_path / "f.html").exists()
    first = run_module("release_report", args)
    assert first["changed"] and first["fleet"]["consistent"], first.get("msg")
    assert json.loads((tmp_path / "f.json").read_text())["line"] == "demo: v2 on every host (2: h1, h2)"
    again = run_module("release_report", args)
    assert not again["changed"], "the same reports again are not a change (generated_at aside)"
    missing = run_module("release_report", {k: v for k, v in args.items() if k != "reports"})
    assert missing["failed"] and "reports" in missing["msg"]
