"""AWX runs playbooks through ansible-runner, with the job's extra vars (template, survey, prompts) in
env/extravars passed as `-e @file`: a release run that way publishes its set_stats artifacts (live color,
version, release id, verdicts) for workflows, and a command given as an extra var is refused unless the
inventory allows it."""

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


ENV = {
    "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
}


def run_as_awx(directory: Path, playbook: str, extravars: dict, inventory=INVENTORY):
    """ansible-runner as AWX uses it: the extra vars in <private data dir>/env/extravars (-e @file)."""
    (directory / "env").mkdir(parents=True)
    (directory / "env" / "extravars").write_text(json.dumps(extravars))
    return ansible_runner.run(
        private_data_dir=str(directory),
        playbook=str(PLAYBOOK_DIR / playbook),
        inventory=inventory if isinstance(inventory, list) else str(inventory),
        envvars=ENV,
        quiet=True,
    )


def test_a_command_given_as_an_extra_var_is_refused_before_anything_changes(testbed, tmp_path) -> None:
    """The launcher sets the signature command (and the switch that would allow it, an interpreter, and a
    remote temporary directory that the sh plugin's mkdtemp would run as a shell command) as extra vars:
    refused on the controller, nothing run, nothing created on the host."""
    app = ReleasedApp(tmp_path, kind="awx")
    pwned = tmp_path / "pwned"
    runner = run_as_awx(
        tmp_path / "runner",
        "release.yml",
        {
            **app.extra,
            "switchyard_version": "v1",
            "switchyard_signature_command": ["sh", "-c", f"touch {pwned}"],
            "switchyard_allow_commands_from_extra_vars": True,
            "ansible_python_interpreter": f"touch {pwned}-interpreter; {sys.executable}",
            "ansible_remote_tmp": f"{tmp_path}/remote-tmp/$(touch {pwned}-remote-tmp)",
        },
    )
    output = runner.stdout.read()
    assert runner.status == "failed", output[-4000:]
    failed = [e for e in runner.events if e.get("event") == "runner_on_failed"]
    assert len(failed) == 1 and failed[0]["event_data"]["task_action"] == "switchyard.release.extra_vars_guard"
    message = failed[0]["event_data"]["res"]["msg"]
    assert "switchyard_allow_commands_from_extra_vars was given as an extra var" in message
    assert (
        "ansible_python_interpreter, ansible_remote_tmp, switchyard_signature_command were given as extra vars"
        in message
    )
    assert not pwned.exists() and not Path(f"{pwned}-interpreter").exists()
    assert not Path(f"{pwned}-remote-tmp").exists() and not (tmp_path / "remote-tmp").exists()

    # ansible_remote_tmp alone (not named like a command): the first module would run its $(...) as root. The
    # inventory accepts the template's own interpreter by name: that one passes, the temporary directory does not.
    allowlist = tmp_path / "allowlist.yml"
    allowlist.write_text("docker_hosts:\n  vars:\n    switchyard_extra_vars_allowed: [ansible_python_interpreter]\n")
    alone = run_as_awx(
        tmp_path / "runner-remote-tmp",
        "release.yml",
        {
            **app.extra,
            "switchyard_version": "v1",
            "ansible_python_interpreter": sys.executable,
            "ansible_remote_tmp": f"{tmp_path}/remote-tmp/$(touch {pwned})",
        },
        inventory=[str(INVENTORY), str(allowlist)],
    )
    assert alone.status == "failed", alone.stdout.read()[-4000:]
    failed = [e for e in alone.events if e.get("event") == "runner_on_failed"]
    assert len(failed) == 1 and failed[0]["event_data"]["task_action"] == "switchyard.release.extra_vars_guard"
    message = failed[0]["event_data"]["res"]["msg"]
    assert "ansible_remote_tmp was given as an extra var" in message and "ansible_python_interpreter" not in message
    assert not pwned.exists() and not (tmp_path / "remote-tmp").exists()
    assert not app.state.exists(), "nothing may be created on the host"
    assert not app.containers_all("lb") and not app.containers_all("data")


def test_release_through_ansible_runner_publishes_set_stats(testbed, tmp_path) -> None:
    """With switchyard_allow_commands_from_extra_vars true in the inventory, the signature command given as
    an extra var runs for each pinned image."""
    app = ReleasedApp(tmp_path, kind="awx")
    allow = tmp_path / "allow.yml"
    allow.write_text("docker_hosts:\n  vars:\n    switchyard_allow_commands_from_extra_vars: true\n")
    verified = tmp_path / "verified"
    try:
        runner = run_as_awx(
            tmp_path / "runner",
            "release.yml",
            {
                **app.extra,
                "switchyard_version": "v1",
                "switchyard_signature_command": ["sh", "-c", f'echo "$1" >> {verified}', "verify", "{image}"],
            },
            inventory=[str(INVENTORY), str(allow)],
        )
        assert runner.status == "successful", runner.stdout.read()[-4000:]
        assert verified.read_text().split() == [testbed.pinned("demo-app:v1")]
        published = artifacts(runner)
        ledger = app.ledger()
        assert published["switchyard_outcome"] == "promoted"
        assert published["switchyard_live_color"] == "blue" and published["switchyard_live_version"] == "v1"
        assert published["switchyard_release_id"] == ledger["releases"][-1]["id"]
        assert published["switchyard_app"] == app.app
        assert published["switchyard_report"] == str(app.reports / f"{ledger['releases'][-1]['id']}.html")

        status = run_as_awx(tmp_path / "runner-status", "status.yml", app.extra)
        assert status.status == "successful"
        assert artifacts(status)["switchyard_lock_state"] == "free"
        # The release's report on the Docker host (the runner's controller directory has no copy of it).
        page = app.state / "reports" / f"{ledger['releases'][-1]['id']}.html"
        assert artifacts(status)["switchyard_report_host"] == str(page) and page.is_file()
        json.dumps(published)  # what AWX stores must be plain JSON
    finally:
        app.down()
