"""extra_vars_guard: command-valued variables given as extra vars are refused (naming them and the switch)
unless the inventory's switch allows them; the switch itself is never accepted as an extra var."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.switchyard.release.plugins.action.extra_vars_guard import (
    ARGUMENT_SPEC,
    COMMAND_VARIABLES,
    ROLE_VARIABLES,
    SWITCH,
    commands_given,
    refused,
    switch_value,
)
from ansible_collections.switchyard.release.plugins.modules import extra_vars_guard as stub

ROLES = Path(__file__).resolve().parents[3] / "roles"
NAMES = list(COMMAND_VARIABLES + ROLE_VARIABLES)
PLAYBOOKS = ROLES.parent / "playbooks"


@pytest.mark.parametrize(
    "name",
    [
        "switchyard_signature_command",
        "switchyard_cosign_cli",
        # The verification policy: a launcher must not turn it off, or point it at a key of their own.
        "switchyard_verify_signatures",
        "switchyard_require_sbom",
        "switchyard_cosign_public_key",
        "switchyard_preflight_skip",
        "ansible_python_interpreter",
        "ansible_shell_executable",
        "ansible_ssh_executable",
        "ansible_become_exe",
        "ansible_sudo_exe",
        "ansible_become_flags",
        "ansible_ssh_common_args",  # -o ProxyCommand=... runs on the controller
        "ansible_ssh_extra_args",
        "ansible_scp_extra_args",
        "ansible_sftp_extra_args",
        # Not named like commands, yet they run one or send the job elsewhere: every ansible_* is refused.
        "ansible_remote_tmp",  # put into the sh plugin's mkdtemp command: $(...) runs on the host
        "ansible_interpreter_python_fallback",
        "ansible_paramiko_proxy_command",
        "ansible_ssh_private_key_file",
        "ansible_host",  # the job, with its secrets, sent to another machine
        "ansible_user",
        "ansible_port",
        "ansible_connection",
        "ansible_become",
        "ansible_become_user",
        "ansible_future_variable_of_ansible",
    ],
)
def test_each_command_valued_variable_is_refused_naming_it_and_the_switch(name) -> None:
    message = refused({name, "switchyard_version"}, NAMES, SWITCH, allowed=False)
    assert message.startswith("Refused before anything changed: ")
    assert f"{name} was given as an extra var" in message
    assert f"set {SWITCH}: true in the inventory" in message
    assert "switchyard_version" not in message.split(". Variables refused", maxsplit=1)[0]


@pytest.mark.parametrize(
    "extra",
    [
        {"switchyard_version", "switchyard_images", "switchyard_stop_after_step", "switchyard_canary_window"},
        {"my_ansible_setting", "Ansible_host", "awx_job_id"},  # only names that start with ansible_
        set(),
    ],
)
def test_other_variables_pass(extra) -> None:
    assert refused(extra, NAMES, SWITCH, allowed=False) is None


def test_several_are_named_together_with_the_switch() -> None:
    extra = {"ansible_remote_tmp", "ansible_host", "switchyard_signature_command", "switchyard_version"}
    message = refused(extra, NAMES, SWITCH, allowed=False)
    assert "ansible_host, ansible_remote_tmp, switchyard_signature_command were given as extra vars" in message
    assert message.endswith(
        f"Variables refused as extra vars unless {SWITCH} is true in the inventory: {', '.join(NAMES)}."
    )


def test_the_inventory_switch_accepts_them() -> None:
    extra = {"switchyard_signature_command", "ansible_python_interpreter", "switchyard_version"}
    assert refused(extra, NAMES, SWITCH, allowed=True) is None
    assert commands_given(extra, NAMES) == ["ansible_python_interpreter", "switchyard_signature_command"]


def test_the_switch_is_refused_as_an_extra_var_whatever_its_value() -> None:
    message = refused({SWITCH, "switchyard_signature_command"}, NAMES, SWITCH, allowed=True)
    assert f"{SWITCH} was given as an extra var: it is only read from the inventory" in message
    assert "switchyard_signature_command was given as an extra var" in message
    assert refused({SWITCH}, NAMES, SWITCH, allowed=False).startswith(f"Refused before anything changed: {SWITCH}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("yes", True),
        ("True", True),
        (1, True),
        (False, False),
        ("false", False),
        ("no", False),
        (0, False),
    ],
)
def test_the_switch_reads_booleans(value, expected) -> None:
    assert switch_value(SWITCH, value) is expected


@pytest.mark.parametrize("value", ["ture", "", "allow", None, ["true"]])
def test_a_switch_that_is_not_a_boolean_is_an_error_not_a_yes(value) -> None:
    with pytest.raises(AnsibleActionFail, match=f"{SWITCH} must be true or false"):
        switch_value(SWITCH, value)


def test_every_command_valued_default_of_the_roles_is_refused() -> None:
    """A new variable holding a command (argv, command, cmd, exec, script, hook) must be added to the list."""
    names = set()
    for defaults in ROLES.glob("*/defaults/main.yml"):
        names |= set((yaml.safe_load(defaults.read_text()) or {}).keys())
    commands = {n for n in names if re.search(r"argv|command|_cmd|_cli$|exec|script|hook", n) and n != SWITCH}
    assert commands == {"switchyard_signature_command", "switchyard_cosign_cli"}
    assert commands_given(commands, NAMES) == sorted(commands)


def test_the_documented_options_match_the_argument_spec() -> None:
    options = yaml.safe_load(stub.DOCUMENTATION)["options"]
    assert set(options) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        assert options[name]["type"] == spec["type"] and options[name]["default"] == spec["default"]


def test_the_inventory_allowlist_accepts_those_names_only() -> None:
    """An AWX template's own ansible_python_interpreter, without opening the switch to every other variable."""
    extra = {"ansible_python_interpreter", "ansible_remote_tmp", "switchyard_version"}
    message = refused(extra, NAMES, SWITCH, allowed=False, accepted=["ansible_python_interpreter"])
    assert message and "ansible_remote_tmp was given as an extra var" in message
    assert "ansible_python_interpreter" not in message.split("unless", maxsplit=1)[0]
    assert (
        refused({"ansible_python_interpreter"}, NAMES, SWITCH, allowed=False, accepted=["ansible_python_interpreter"])
        is None
    )


def test_the_allowlist_is_refused_as_an_extra_var() -> None:
    message = refused({"switchyard_extra_vars_allowed", "ansible_host"}, NAMES, SWITCH, allowed=False)
    assert "switchyard_extra_vars_allowed was given as an extra var: it is only read from the inventory" in message


def _role_decided_names(node, names: set) -> None:
    """What the roles and playbooks register, set_fact, or pass another role through include vars."""
    if isinstance(node, dict):
        if isinstance(node.get("register"), str):
            names.add(node["register"])
        facts = node.get("ansible.builtin.set_fact")
        if isinstance(facts, dict):
            names |= {name for name in facts if name != "cacheable"}
        if any(k in node for k in ("ansible.builtin.include_role", "ansible.builtin.include_tasks")):
            names |= set(node.get("vars") or {})
        for value in node.values():
            _role_decided_names(value, names)
    elif isinstance(node, list):
        for item in node:
            _role_decided_names(item, names)


def test_every_name_the_roles_decide_themselves_is_refused_as_an_extra_var() -> None:
    """Extra vars outrank register, set_fact and include vars: -e __switchyard_pinned=... would deploy a digest
    nobody verified, -e switchyard_migrate_phase=contract would contract during a release."""
    names: set = set()
    for path in [*ROLES.glob("*/tasks/*.yml"), *PLAYBOOKS.glob("*.yml")]:
        _role_decided_names(yaml.safe_load(path.read_text()), names)
    assert {"__switchyard_pinned", "switchyard_release", "switchyard_stack_images", "switchyard_migrate_phase"} <= names
    assert commands_given(names, NAMES) == sorted(names)
    message = refused({"__switchyard_pinned"}, NAMES, SWITCH, allowed=False)
    assert "__switchyard_pinned was given as an extra var" in message and "what the roles decide themselves" in message
