"""release_report run as Ansible runs it (a Python process reading its arguments), on a state directory
holding a recorded ledger: collect (check mode writes nothing), then render; bad input names the option."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from support.modules import run_module

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"


def state_dir(tmp_path: Path) -> Path:
    entries = json.loads((FIXTURES / "ledger-entries.json").read_text())
    ledger = {
        "schema": 1,
        "app": "demo",
        "live": "green",
        "previous": "blue",
        "colors": {},
        "weights": {},
        "migrations": {"applied": [], "contracted": [], "last_contract_at": None},
        "releases": [entries["promoted"], entries["rolled_back"]],
        "takeovers": [],
        "updated_at": None,
    }
    state = tmp_path / "state"
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "db_password").write_text("pw-0123456789\n")
    (state / "green").mkdir()
    (state / "green" / "color.env").write_text(
        "SWITCHYARD_COLOR=green\nDEMO_DSN=postgres://app:pw-0123456789@db/demo\n"
    )
    (state / "ledger.json").write_text(json.dumps(ledger))
    return state


def test_collect_then_render(tmp_path):
    state = state_dir(tmp_path)
    args = {
        "app": "demo",
        "path": str(state),
        "archive": {
            "green/color.env": str(state / "green" / "color.env"),
            "secret": str(state / "secrets" / "db_password"),
        },
        "run": {"playbook": "release.yml", "outcome": "failed", "failed_task": "Stop the release"},
    }
    planned = run_module("release_report", args, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] and not (state / "reports").exists()
    done = run_module("release_report", args)
    assert not done.get("failed"), done.get("msg")
    report = done["report"]
    assert report["release"]["outcome"] == "rolled_back"  # the ledger's last release by default
    assert report["failure"]["metric_names"] == ["error_rate", "error_rate_increase"]
    assert json.loads(Path(done["json"]).read_text())["release"]["id"] == report["release"]["id"]
    assert done["archive"]["excluded"] == [{"path": str(state / "secrets" / "db_password"), "why": "a secret file"}]
    with tarfile.open(done["archive"]["path"]) as tar:
        text = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert "pw-0123456789" not in text and "SWITCHYARD_COLOR=****" in text and "DEMO_DSN=****" in text
    page = run_module(
        "release_report",
        {"mode": "render", "app": "demo", "report": report, "dest": str(tmp_path / "reports" / "r.html")},
    )
    assert not page.get("failed"), page.get("msg")
    html = Path(page["html"]).read_text()
    assert page["changed"] and "error_rate, error_rate_increase" in html and html.count("<svg") == 4


def test_an_unknown_release_is_refused_naming_the_option(tmp_path):
    result = run_module("release_report", {"app": "demo", "path": str(state_dir(tmp_path)), "release_id": "nope"})
    assert result["failed"] and "release_id='nope'" in result["msg"]
    result = run_module("release_report", {"app": "demo", "mode": "render"})
    assert result["failed"] and "report" in result["msg"] and "dest" in result["msg"]


def test_a_report_made_again_on_an_unchanged_release_is_no_change(tmp_path):
    """Only generated_at differs the second time: collect and render say changed=false (check mode too), and
    the files are left as they were."""
    state = state_dir(tmp_path)
    args = {"app": "demo", "path": str(state), "archive": {"green/color.env": str(state / "green" / "color.env")}}
    first = run_module("release_report", args)
    assert first["changed"], first.get("msg")
    files = sorted((state / "reports").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert not run_module("release_report", args, check=True)["changed"]
    again = run_module("release_report", args)
    assert not again["changed"] and again["report"]["generated_at"] >= first["report"]["generated_at"]
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    page = {"mode": "render", "app": "demo", "dest": str(tmp_path / "out" / "r.html")}
    assert run_module("release_report", {**page, "report": first["report"]})["changed"]
    assert not run_module("release_report", {**page, "report": again["report"]})["changed"]
    # A changed file to archive is a change.
    (state / "green" / "color.env").write_text("SWITCHYARD_COLOR=green\nNEW=1\n")
    assert run_module("release_report", args, check=True)["changed"]


FAKE_DOCKER = """#!/usr/bin/env python3
import sys
with open(sys.argv[0] + ".calls", "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
if "missing" in sys.argv:
    sys.stderr.write("Error response from daemon: No such container: missing\\n")
    sys.exit(1)
for i in range(1000):
    print("2026-12-03T22:08:%02d.%06dZ 172.18.0.1 be_api/api_green 200 1 3 233" % (10 + i // 200, i))
"""


def test_the_lb_log_is_read_over_a_bounded_span_keeping_the_latest_records(tmp_path, monkeypatch):
    """A release longer than max_span: `docker logs` over the `before` seconds before it and its last
    max_span seconds only; no more than max_requests records kept (the latest), the rest counted."""
    state = state_dir(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    lb = {"dir": str(tmp_path / "lb"), "container": "lb"}
    args = {"app": "demo", "path": str(state), "lb": lb, "routes": ["api"], "max_span": 2, "max_requests": 300}
    done = run_module("release_report", args)
    assert not done.get("failed"), done.get("msg")
    calls = (bin_dir / "docker.calls").read_text().splitlines()
    log = done["report"]["log"]
    assert len(calls) == 2 and [s["seconds"] for s in log["spans"]] == [60.0, 2.0], (calls, log)
    assert all(f"--since {collect_time(s['since'])}" in c for s, c in zip(log["spans"], calls, strict=True))
    assert log["read"] == 300 and log["dropped"] == 2 * 1000 - 300
    assert "max_requests=300" in str(done.get("warnings"))
    failed = run_module("release_report", {**args, "lb": {**lb, "container": "missing"}})
    assert not failed.get("failed") and "No such container" in str(failed.get("warnings"))
    assert failed["report"]["log"] == {}
    bad = run_module("release_report", {**args, "max_span": 0})
    assert bad["failed"] and "max_span" in bad["msg"]


def collect_time(stamp):
    """The --since argument of a span's start (docker gets an ISO time with an offset)."""
    return stamp.replace("Z", "+00:00")
