"""The data and stack roles write the values they are given - interpolation variables (data.env, color.env),
the color's container environment (color.override.yaml), the secret files - and show none of them, not even
at -vvv --diff: any of them can be a secret."""

from __future__ import annotations

import uuid
from pathlib import Path

from support.compose import ComposeProject, docker, remove_network, unique_name
from support.playbooks import local_inventory, run_playbook
from support.testbed import Testbed

PLAYBOOK = """
- name: The data project, then one color
  hosts: docker_hosts
  gather_facts: false
  roles:
    - role: switchyard.release.data
    - role: switchyard.release.stack
"""

# One container that only sleeps: the roles' files are the point, not the app.
COMPOSE = """services:
  {service}:
    image: {image}
    command: [sleep, infinity]
    init: true
"""


def test_data_and_stack_roles_at_vvv_diff_show_no_value_they_write(testbed: Testbed, tmp_path: Path) -> None:
    app = unique_name("sec")
    state = tmp_path / "state"
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in ("data_env", "compose_env", "stack_env", "file")}
    image = testbed.image("base:bookworm")
    (tmp_path / "data.yaml").write_text(COMPOSE.format(service="db", image=image))
    (tmp_path / "color.yaml").write_text(COMPOSE.format(service="api", image=image))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {
        "switchyard_app": app,
        "switchyard_version": "1.0",
        "switchyard_state_dir": str(state),
        "switchyard_data_compose_files": [str(tmp_path / "data.yaml")],
        "switchyard_data_images": {"db": image},
        "switchyard_data_env": {"DATA_PASSWORD": secrets["data_env"]},
        "switchyard_compose_files": [str(tmp_path / "color.yaml")],
        "switchyard_images": {"api": image},
        "switchyard_compose_env": {"REGISTRY_TOKEN": secrets["compose_env"]},
        # A `$` in a password: the container gets it as written (Compose does not interpolate it away).
        "switchyard_stack_env": {"DATABASE_URL": f"postgres://app:pa$word{secrets['stack_env']}@db/app"},
        "switchyard_secrets": [{"name": "api_token", "content": secrets["file"]}],
        "switchyard_health_timeout": 30,
        "switchyard_data_wait_timeout": 30,
    }
    # switchyard_stack_env is the stack role's own parameter (the release role passes it): allowed as -e here.
    inventory = local_inventory(tmp_path, allowed=("switchyard_stack_env",))
    try:
        played = run_playbook(tmp_path / "play.yml", inventory, extra, "--diff", "-vvv")
        api = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={app}-blue").stdout.split()
        environment = docker("inspect", "--format", "{{json .Config.Env}}", *api).stdout
        # A value that would add a line of its own to color.env (another variable) is refused, the file unchanged.
        written = (state / "blue" / "color.env").read_bytes()
        hostile = {**extra, "switchyard_compose_env": {"REGISTRY_TOKEN": f"{secrets['compose_env']}\nEVIL=1"}}
        refused = run_playbook(tmp_path / "play.yml", inventory, hostile, "-vvv", check=False)
    finally:
        for project in ("data", "blue"):
            ComposeProject(f"{app}-{project}", []).down()
        for network in ("public", "edge", "data"):
            remove_network(f"{app}_{network}")
    output = played.stdout + played.stderr
    assert (
        refused.returncode != 0
        and "switchyard_compose_env.REGISTRY_TOKEN holds a single quote, newline" in refused.stdout
    )
    assert secrets["compose_env"] not in refused.stdout + refused.stderr
    assert (state / "blue" / "color.env").read_bytes() == written
    assert {name: output.count(secret) for name, secret in secrets.items()} == dict.fromkeys(secrets, 0)
    # Written all the same, and each task still says which file it wrote.
    assert f"DATA_PASSWORD='{secrets['data_env']}'" in (state / "data" / "data.env").read_text()
    assert f"REGISTRY_TOKEN='{secrets['compose_env']}'" in (state / "blue" / "color.env").read_text()
    assert f"DATABASE_URL=postgres://app:pa$word{secrets['stack_env']}@db/app" in environment
    # The secret file holds the value and one newline, as a database image's *_FILE variable reads it.
    assert (state / "secrets" / "api_token").read_bytes() == secrets["file"].encode() + b"\n"
    for task in (
        "<app>-data - data/data.env",
        "color.env, the color's interpolation variables, of blue",
        "color.override.yaml, the color's own container environment, of blue",
    ):
        assert task in output, task
