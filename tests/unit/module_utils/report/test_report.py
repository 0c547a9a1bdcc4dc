"""The release report from recorded ledger entries (a promoted canary release and one the gate rolled
back, as the e2e suite's ledger kept them) and HAProxy log lines as `docker logs --timestamps` prints them."""

from __future__ import annotations

import datetime
import json
import random
import re
import tarfile
from pathlib import Path

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.backend import HAProxy
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


def test_the_gates_figures_by_side_are_the_colors_figures():
    entry = json.loads(json.dumps(ENTRIES["promoted"]))
    step = next(s for s in entry["steps"] if s["name"] == "canary-10")
    step["verdict"]["figures"] = {
        "baseline": {"name": "blue", "requests": 261, "cpu_percent": 3.0, "restarts": 0, "memory_bytes": 31457280},
        "canary": {"name": "green", "requests": 29, "cpu_percent": 12.5, "restarts": 1, "memory_bytes": 41943040},
    }
    report = collect.collect("demo", entry, [], collect.epoch(entry["finished_at"]))
    colors = next(s for s in report["steps"] if s["name"] == "canary-10")["colors"]
    assert (
        colors["green"]["requests"] == 29 and colors["green"]["restarts"] == 1 and colors["green"]["source"] == "gate"
    )
    assert colors["blue"]["requests"] == 261 and colors["blue"]["cpu_percent"] == 3.0


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
    assert "SWITCHYARD_COLOR=****" in text and "DB_PASSWORD=****" in text


# Secrets a name does not give away, as an app's env file and Compose override hold them.
UNNAMED_SECRETS = {
    "DATABASE_URL": "postgresql://app:s3cretpw@db/app",
    "DB_PASS": "Zq8-hunter2-x",
    "SENTRY_DSN": "https://0123456789abcdef@o42.ingest.sentry.io/77",
    "STRIPE_KEY": "sk_live_51Hx0AbCdEfGh",
    "JSON_CONFIG": '{"api": {"key": "k-json-value-99"}}',
}
PEM = [
    "-----BEGIN PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7==",
    "-----END PRIVATE KEY-----",
]
CLEAR = ["s3cretpw", "hunter2", "0123456789abcdef", "sk_live_51Hx0AbCdEfGh", "k-json-value-99", "MIIEvQIBADAN", "BEGIN"]


def test_the_archive_masks_every_env_value_keeps_the_keys_and_masks_url_userinfo(tmp_path):
    """Every value of an env file and of a Compose `environment:` is masked whatever its name (a URL with a
    password, a DSN, a key, JSON, a multi-line private key); the keys stay; elsewhere only URL userinfo goes."""
    env = "".join(f"{k}={v}\n" if k != "JSON_CONFIG" else f"{k}='{v}'\n" for k, v in UNNAMED_SECRETS.items())
    env += 'PRIVATE_KEY="' + "\n".join(PEM) + '"\nSWITCHYARD_COLOR=green\n'
    (tmp_path / "color.env").write_text(env)
    mapping = "".join(f"      {k}: '{v}'\n" for k, v in UNNAMED_SECRETS.items())
    mapping += "      PRIVATE_KEY: |\n" + "".join(f"        {line}\n" for line in PEM)
    listed = "".join(f"      - {k}={v}\n" for k, v in UNNAMED_SECRETS.items()) + "      - FROM_HOST\n"
    (tmp_path / "color.override.yaml").write_text(
        f"services:\n  api:\n    image: demo:2\n    environment:\n{mapping}    labels:\n      tier: api\n"
        f"  worker:\n    environment:\n{listed}  cron:\n    environment: {{DB_PASS: 'Zq8-hunter2-x'}}\n"
    )
    (tmp_path / "haproxy.cfg").write_text(
        "backend be_api\n    server api_blue 10.0.0.2:80 check\n"
        "    http-request set-header X-Up https://ops:s3cretpw@hooks.example/x\n"
    )
    dest = tmp_path / "a.tar.gz"
    files = {
        "green/color.env": str(tmp_path / "color.env"),
        "green/color.override.yaml": str(tmp_path / "color.override.yaml"),
        "lb/haproxy.cfg": str(tmp_path / "haproxy.cfg"),
    }
    run = {"failure": "cannot connect to postgresql://app:s3cretpw@db/app"}
    archive.build_archive(str(dest), "r1", files, {"id": "r1"}, run)
    with tarfile.open(dest) as tar:
        text = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    for secret in CLEAR:
        assert all(secret not in t for t in text.values()), secret
    env_lines = text["r1/green/color.env"].splitlines()
    assert env_lines == [f"{k}=****" for k in [*UNNAMED_SECRETS, "PRIVATE_KEY", "SWITCHYARD_COLOR"]]
    override = text["r1/green/color.override.yaml"]
    for key in UNNAMED_SECRETS:
        assert f"      {key}: ****\n" in override and f"      - {key}=****\n" in override
    assert "      PRIVATE_KEY: ****\n    labels:\n      tier: api\n" in override and "      - FROM_HOST\n" in override
    assert "    environment: {DB_PASS: ****}\n" in override and "    image: demo:2\n" in override
    assert text["r1/lb/haproxy.cfg"] == (tmp_path / "haproxy.cfg").read_text().replace("ops:s3cretpw@", "****@")
    assert "postgresql://****@db/app" in text["r1/ansible-run.json"]
    # Written atomically: no temporary file is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_ledger_entry_left_running_by_a_failed_run_is_reported_as_a_failure():
    """The run failed but its ledger entry still says `running` (the lock lost, the fail write failed): the
    run's summary decides - a red FAILED banner, never a green "Outcome: running"."""
    entry = {**ENTRIES["promoted"], "outcome": "running", "finished_at": None}
    now = collect.epoch(ENTRIES["promoted"]["finished_at"]) + 5
    run = {"outcome": "failed", "failed_task": "Shift traffic", "failure": "lock lost"}
    report = collect.collect("demo", entry, [], now, run=run)
    assert report["failure"]["outcome"] == "failed" and report["failure"]["task"] == "Shift traffic"
    html = render.render(report)
    assert 'id="failure"><strong>FAILED</strong>' in html and 'class="ok"' not in html
    assert collect.collect("demo", entry, [], now, run={"failed_task": "Shift traffic"})["failure"] is not None
    assert collect.collect("demo", entry, [], now, run={"outcome": "paused"})["failure"] is None


def test_a_docker_client_that_cannot_run_is_an_lb_error(tmp_path):
    """No docker client: an LBError (the report warns and keeps the gate's numbers), not a crash."""
    lb = HAProxy({"dir": str(tmp_path), "container": "lb", "docker_cli": str(tmp_path / "no-docker")}, runner=None)
    since = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    with pytest.raises(LBError, match="cannot run .*no-docker logs"):
        lb.request_log(["api"], since, since + datetime.timedelta(seconds=60))
