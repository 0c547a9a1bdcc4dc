"""AWX runs playbooks through ansible-runner: a release run that way publishes its set_stats
artifacts (live color, version, release id, verdicts) for workflows."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import ansible_runner
import pytest
from support.release import INVENTORY, PLAYBOOK_DIR, ReleasedApp
from support.testbed import REPO_ROOT

pytestmark = pytest.mark.timeout(600)


def artifacts(runner) -> dict:
    stats = [e for e in runner.events if e.get("event") == "playbook_on_stats"]
    assert stats, "no playbook_on_stats event"
    return stats[-1]["event_data"].get("artifact_data", {})


def test_release_through_ansible_runner_publishes_set_stats(testbed, tmp_path) -> None:
    app = ReleasedApp(tmp_path, kind="awx")
    env = {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    (tmp_path / "runner").mkdir()
    (tmp_path / "runner-status").mkdir()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(tmp_path / "runner"),
            playbook=str(PLAYBOOK_DIR / "release.yml"),
            inventory=str(INVENTORY),
            extravars={**app.extra, "switchyard_version": "v1"},
            envvars=env,
            quiet=True,
        )
        assert runner.status == "successful", runner.stdout.read()[-4000:]
        published = artifacts(runner)
        ledger = app.ledger()
        assert published["switchyard_outcome"] == "promoted"
        assert published["switchyard_live_color"] == "blue" and published["switchyard_live_version"] == "v1"
        assert published["switchyard_release_id"] == ledger["releases"][-1]["id"]
        assert published["switchyard_app"] == app.app

        status = ansible_runner.run(
            private_data_dir=str(tmp_path / "runner-status"),
            playbook=str(PLAYBOOK_DIR / "status.yml"),
            inventory=str(INVENTORY),
            extravars=app.extra,
            envvars=env,
            quiet=True,
        )
        assert status.status == "successful"
        assert artifacts(status)["switchyard_lock_state"] == "free"
        json.dumps(published)  # what AWX stores must be plain JSON
    finally:
        app.down()
