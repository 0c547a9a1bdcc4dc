"""End to end: compose_project through ansible-playbook on the local Docker host, in check mode
(nothing happens) and for real (a second run reports no change)."""

from __future__ import annotations

from pathlib import Path

from conftest import DEMO_DIR
from support.compose import ComposeProject, docker, free_port
from support.playbooks import PLAYBOOKS, local_inventory, run_playbook

PLAYBOOK = PLAYBOOKS / "compose_project.yml"


def playbook(inventory: Path, extra: dict, *flags: str):
    return run_playbook(PLAYBOOK, inventory, extra, *flags)


def test_playbook_deploys_then_converges(testbed, demo_app_name, demo_secrets, demo_data, demo_files, tmp_path) -> None:
    demo_data.psql_file(DEMO_DIR / "migrations" / "0001_create_items" / "expand.sql")
    inventory = local_inventory(tmp_path)
    project = f"{demo_app_name}-blue"
    env_file = tmp_path / "blue.env"
    env_file.write_text(
        f"SWITCHYARD_APP={demo_app_name}\nSWITCHYARD_COLOR=blue\nDEMO_SECRETS_DIR={demo_secrets}\nDEMO_PORT={free_port()}\n"
    )
    extra = {
        "project": project,
        "color": "blue",
        "compose_files": [str(f) for f in demo_files],
        "env_files": [str(env_file)],
        "api_image": testbed.image("demo-app:v1"),
    }
    try:
        check = playbook(inventory, extra, "--check", "--diff")
        assert "changed=1" in check.stdout.replace(" ", "") or "changed: [localhost]" in check.stdout
        assert not docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.strip()
        real = playbook(inventory, extra)
        assert "changed=1" in real.stdout.replace(" ", ""), real.stdout
        running = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        assert len(running) == 1
    finally:
        ComposeProject(project, []).down()
