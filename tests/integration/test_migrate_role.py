"""The migrate role on the local Docker host: its copy of the migrations mirrors the controller's
directory, so a file removed there is removed on the host and does not run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from support.compose import unique_name
from support.playbooks import local_inventory, run_playbook
from support.postgres import Postgres
from support.testbed import REPO_ROOT

from ansible_collections.switchyard.release.plugins.filter.tree_digest import tree_digest

PLAYBOOK = """
- name: One migration phase with the migrate role
  hosts: docker_hosts
  gather_facts: false
  roles:
    - role: switchyard.release.migrate
  post_tasks:
    - name: Keep the module's result for the test
      ansible.builtin.copy:
        content: "{{ switchyard_migrate_result | to_json }}"
        dest: "{{ test_result_file }}"
        mode: "0600"
      check_mode: false
      changed_when: false
"""


class Role:
    """The migrate role run against one fresh database, with a controller directory the test edits."""

    def __init__(self, pg: Postgres, tmp_path: Path) -> None:
        self.controller = tmp_path / "controller" / "migrations"
        shutil.copytree(REPO_ROOT / "examples" / "app" / "migrations", self.controller)
        self.host = tmp_path / "state" / "migrations"
        self.playbook = tmp_path / "migrate.yml"
        self.playbook.write_text(PLAYBOOK)
        # The role's own parameters, passed with -e as the release role passes them through include vars.
        self.inventory = local_inventory(
            tmp_path, allowed=("switchyard_db_address", "switchyard_migrate_phase", "switchyard_migrate_target")
        )
        self.result_file = tmp_path / "result.json"
        self.database = pg.create_database()
        self.extra = {
            "switchyard_app": unique_name("mig"),
            "switchyard_state_dir": str(tmp_path / "state"),
            "switchyard_migrations_dir": str(self.controller),
            "switchyard_db": {
                "host": "127.0.0.1",
                "port": pg.port,
                "database": self.database,
                "user": "switchyard",
                "password_file": str(pg.password_file),
            },
            "switchyard_db_address": "127.0.0.1",
            "switchyard_migrate_phase": "expand",
            "test_result_file": str(self.result_file),
        }

    def run(self, *flags: str, ok: bool = True, **extra):
        self.result_file.unlink(missing_ok=True)
        played = run_playbook(self.playbook, self.inventory, {**self.extra, **extra}, *flags, check=ok)
        result = json.loads(self.result_file.read_text()) if self.result_file.exists() else None
        return played, result

    def host_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.host)) for p in self.host.rglob("*"))


def recap_changed(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("localhost") and "changed=" in line)
    return int(line.split("changed=")[1].split()[0])


def test_a_file_removed_on_the_controller_is_removed_on_the_host_and_does_not_run(pg: Postgres, tmp_path: Path) -> None:
    role = Role(pg, tmp_path)
    note = role.controller / "0003_note" / "expand.sql"
    note.parent.mkdir()
    note.write_text("ALTER TABLE items ADD COLUMN note text;\n")
    _played, first = role.run(switchyard_migrate_target=2)
    assert [a["version"] for a in first["applied"]] == [1, 2]
    assert "0003_note/expand.sql" in role.host_files()

    shutil.rmtree(note.parent)
    # Check mode says what it would remove, and removes nothing.
    played, _result = role.run("--check", "--diff", switchyard_migrate_target=2)
    assert "TASK [switchyard.release.migrate : Remove what the controller no longer has]" in played.stdout
    assert "changed: [localhost] => (item=0003_note/expand.sql)" in played.stdout
    assert "changed: [localhost] => (item=0003_note)" in played.stdout
    assert "0003_note/expand.sql" in role.host_files()

    _played, mirrored = role.run()
    assert not any(f.startswith("0003_note") for f in role.host_files())
    assert ".switchyard-digest" in role.host_files()
    assert mirrored["applied"] == [] and not mirrored["changed"]
    assert pg.query(
        role.database, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note'"
    ) == [(0,)]

    again, _result = role.run()
    assert recap_changed(again.stdout) == 0, again.stdout
    # the digest matched: no listing, no copy
    assert re.search(r"List the migrations on the controller\] \*+\nskipping: \[localhost\]", again.stdout)


def test_an_applied_file_removed_on_the_controller_stops_the_role_naming_it(pg: Postgres, tmp_path: Path) -> None:
    role = Role(pg, tmp_path)
    _played, first = role.run()
    assert [a["version"] for a in first["applied"]] == [1, 2]
    (role.controller / "0002_display_name" / "expand.sql").unlink()
    played, _result = role.run(ok=False)
    assert played.returncode != 0
    assert "0002_display_name/expand.sql is gone but its expand phase was applied" in played.stdout
    assert "0002_display_name/expand.sql" not in role.host_files()


def test_a_copy_made_before_mirroring_is_mirrored_once(pg: Postgres, tmp_path: Path) -> None:
    """The old role copied without removing and wrote the bare digest: its stale files go at the next run."""
    role = Role(pg, tmp_path)
    shutil.copytree(role.controller, role.host)
    stale = role.host / "0003_stale" / "expand.sql"
    stale.parent.mkdir()
    stale.write_text("ALTER TABLE items ADD COLUMN stale text;\n")
    (role.host / ".switchyard-digest").write_text(tree_digest(str(role.controller)) + "\n")
    _played, result = role.run()
    assert [a["version"] for a in result["applied"]] == [1, 2], result
    assert not stale.exists()
