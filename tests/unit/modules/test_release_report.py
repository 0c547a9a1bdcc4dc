"""release_report run as Ansible runs it (a Python process reading its arguments), on a state directory
holding a recorded ledger: collect (check mode writes nothing), then render; bad input names the option."""

from __future__ import annotations

import json
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
    assert "pw-0123456789" not in text and "SWITCHYARD_COLOR=green" in text
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
