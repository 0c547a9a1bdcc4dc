"""The release report from recorded ledger entries (a promoted canary release and one the gate rolled
back, as the e2e suite's ledger kept them) and HAProxy log lines as `docker logs --timestamps` prints them."""

from __future__ import annotations

import json
import random
import re
import tarfile
from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.log import parse_timed_lines
from ansible_collections.switchyard.release.plugins.module_utils.report import archive, collect, render

FIXTURES = Path(__file__).parents[2] / "fixtures"
ENTRIES = json.loads((FIXTURES / "report" / "ledger-entries.json").read_text())
LOG_LINE = (
    '{stamp} <150>Dec  3 22:08:13 haproxy[8]: 172.18.0.1 be_api/api_{color} {status} {tr} {ta} 233 "GET / HTTP/1.1"'
)


def log_lines(entry, rate=50.0, canary_errors=0.0, seed=1):
    """Timestamped log lines around the release: blue before it, then the steps' weights."""
    rng = random.Random(seed)
    start = collect.epoch(entry["started_at"]) - 60
    end = collect.epoch(entry["finished_at"]) + 10
    steps = [(collect.epoch(s["at"]), s.get("weights")) for s in entry["steps"] if s.get("weights")]
    lines, t = [], start
    while t < end:
        weights = next((w for at, w in reversed(steps) if at <= t), None) or {entry["from_color"]: 256}
        share = weights.get(entry["color"], 0) / max(1, sum(weights.values()))
        color = entry["color"] if rng.random() < share else entry["from_color"]
        failed = color == entry["color"] and rng.random() < canary_errors
        stamp = collect.iso(t).replace("Z", "") + "123Z" if "." in collect.iso(t) else collect.iso(t)
        lines.append(
            LOG_LINE.format(stamp=stamp, color=color, status=503 if failed else 200, tr=1, ta=rng.randint(1, 9))
        )
        t += 1 / rate
    return lines


def records_of(lines):
    return [
        (at, "api", server.rsplit("_", 1)[1], status, lat)
        for at, _b, server, status, lat in parse_timed_lines(lines, ["be_api"])
    ]


def test_timed_lines_keep_time_server_status_and_latency():
    lines = [
        '2026-12-03T22:08:13.250000000Z 172.18.0.1 be_api/api_green 503 -1 2 0 "GET / HTTP/1.1"',
        '2026-12-03T22:08:13.500000000Z 172.18.0.1 be_api/api_blue 200 1 3 233 "GET / HTTP/1.1"',
        "2026-12-03T22:08:14Z [NOTICE]   (1) : New worker (8) forked",
        '2026-12-03T22:08:14Z 172.18.0.1 be_web/web_blue 200 1 3 233 "GET / HTTP/1.1"',
    ]
    parsed = parse_timed_lines(lines, ["be_api"])
    assert [(round(at % 60, 3), s, st, lat) for at, _b, s, st, lat in parsed] == [
        (13.25, "api_green", 503, None),
        (13.5, "api_blue", 200, 3),
    ]
    # The real log lines of the haproxy fixture have no docker timestamp: nothing is made up.
    assert (
        parse_timed_lines((FIXTURES / "haproxy-2.6.12" / "request-log.txt").read_text().splitlines(), ["be_api"]) == []
    )


def test_a_promoted_release_has_its_timeline_gate_numbers_and_before_after():
    entry = ENTRIES["promoted"]
    records = records_of(log_lines(entry))
    now = collect.epoch(entry["finished_at"]) + 10
    report = collect.collect("demo", entry, records, now)
    assert report["release"]["outcome"] == "promoted" and report["failure"] is None
    assert [s["name"] for s in report["steps"]] == [s["name"] for s in entry["steps"]]
    canary = {s["name"]: s for s in report["steps"]}["canary-10"]
    ledger_verdict = {s["name"]: s for s in entry["steps"]}["canary-10"]["verdict"]
    # The gate's numbers are the ledger's, unchanged; the window is the gate's.
    assert canary["gate"]["metrics"] == ledger_verdict["metrics"]
    assert canary["window"]["seconds"] == pytest.approx(3.0, abs=0.01)
    assert canary["weights"] == {"blue": 230, "green": 26}
    # Figures per color from the log over that window, by the gate's own function.
    green = canary["colors"]["green"]
    in_window = [
        r
        for r in records
        if r[2] == "green" and collect.epoch(canary["window"]["start"]) <= r[0] < collect.epoch(canary["window"]["end"])
    ]
    assert green["requests"] == len(in_window) > 0 and green["source"] == "lb_log"
    assert green["error_rate"] == 0 and green["p95_ms"] <= 9
    before, after = report["before_after"]["before"], report["before_after"]["after"]
    assert before["color"] == "blue" and before["seconds"] == 60 and before["figures"]["requests"] > 2500
    assert after["color"] == "green" and after["seconds"] == pytest.approx(10) and after["figures"]["requests"] > 400
    assert report["images"][0]["digest"].startswith("sha256:") and report["images"][0]["signature"] == "not required"
    assert report["migrations"] and report["migrations"][0]["migrations_applied"]
    share = report["series"]["colors"]["green"]["share_percent"]
    assert share[0] == 0 and max(s for s in share if s is not None) == 100


def test_figures_the_gate_recorded_win_over_the_log():
    entry = json.loads(json.dumps(ENTRIES["promoted"]))
    step = next(s for s in entry["steps"] if s["name"] == "canary-10")
    step["verdict"]["figures"] = {"api": {"green": {"requests": 29, "cpu_percent": 12.5, "restarts": 0}}}
    report = collect.collect("demo", entry, [], collect.epoch(entry["finished_at"]))
    green = next(s for s in report["steps"] if s["name"] == "canary-10")["colors"]["green"]
    assert green["requests"] == 29 and green["cpu_percent"] == 12.5 and green["source"] == "gate"


def test_a_rolled_back_release_names_the_failing_step_and_metrics_and_the_page_highlights_them():
    entry = ENTRIES["rolled_back"]
    records = records_of(log_lines(entry, canary_errors=0.4))
    report = collect.collect(
        "demo", entry, records, collect.epoch(entry["finished_at"]) + 5, run={"failed_task": "Stop"}
    )
    assert report["failure"]["step"] == "canary-10"
    assert report["failure"]["metric_names"] == ["error_rate", "error_rate_increase"]
    assert report["before_after"]["after"] is None
    html = render.render(report)
    banner = re.search(r'<div class="banner" id="failure">(.*?)</div>', html, re.S).group(1)
    assert "canary-10" in banner and "error_rate, error_rate_increase" in banner
    assert 'class="chart failing-metric" id="chart-error_rate"' in html
    assert 'class="chart" id="chart-p95_ms"' in html
    # Self-contained: four inline charts, no script, nothing loaded from anywhere.
    assert html.count("<svg") == 4 and "<script" not in html and not re.search(r"(src|href)=\"(https?:)?//", html)


def test_migrations_show_each_files_duration_and_each_backfills_rate():
    entry = json.loads(json.dumps(ENTRIES["promoted"]))
    entry["steps"].insert(
        1,
        {
            "name": "migrate",
            "at": entry["steps"][0]["at"],
            "migrations_applied": ["2"],
            "backfills": [
                {
                    "version": 2,
                    "name": "display_name",
                    "rows_total": 5000,
                    "rows_done": 5000,
                    "rows_this_run": 5000,
                    "batches": 5,
                    "retries": 0,
                    "seconds": 0.8,
                    "rows_per_second": 6250.0,
                }
            ],
        },
    )
    entry["steps"].insert(
        1,
        {
            "name": "expand",
            "at": entry["steps"][0]["at"],
            "migrations_applied": ["2"],
            "migrations": [{"version": 2, "name": "display_name", "duration_ms": 41.5, "retries": 0}],
        },
    )
    report = collect.collect("demo", entry, [], collect.epoch(entry["finished_at"]))
    assert [m["step"] for m in report["migrations"]][:2] == ["expand", "migrate"]
    html = render.render(report)
    assert "2 display_name: 41.5 ms" in html
    assert "backfill 2 display_name: 5000 rows" in html and "6250.0 rows/s" in html


def test_every_value_is_escaped():
    entry = json.loads(json.dumps(ENTRIES["rolled_back"]))
    entry["reason"] = "<script>alert(1)</script>"
    entry["owner"] = "<b>eve</b>"
    html = render.render(collect.collect("demo", entry, [], collect.epoch(entry["finished_at"])))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>eve</b>" not in html


def test_the_archive_leaves_out_secret_files_and_masks_secret_values(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db_password").write_text("s3cret-pw\n")
    (tmp_path / "color.env").write_text("SWITCHYARD_COLOR=green\nDB_PASSWORD=s3cret-pw\nAPI_TOKEN=abcd1234\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  api:\n    environment:\n      DSN: postgres://app:s3cret-pw@db/demo\n"
    )
    dest = tmp_path / "a.tar.gz"
    files = {
        "green/color.env": str(tmp_path / "color.env"),
        "compose.yaml": str(tmp_path / "compose.yaml"),
        "secret": str(tmp_path / "secrets" / "db_password"),
        "gone": str(tmp_path / "nope"),
    }
    out = archive.build_archive(
        str(dest), "r1", files, {"id": "r1"}, {"failure": "pw s3cret-pw"}, secret_values=["s3cret-pw"]
    )
    assert {e["why"] for e in out["excluded"]} == {"a secret file", "missing"}
    with tarfile.open(dest) as tar:
        names = tar.getnames()
        text = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert sorted(names) == ["r1/ansible-run.json", "r1/compose.yaml", "r1/green/color.env", "r1/ledger-entry.json"]
    assert "s3cret-pw" not in text and "abcd1234" not in text
    assert "SWITCHYARD_COLOR=green" in text and "DB_PASSWORD=****" in text
