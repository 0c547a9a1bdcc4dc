# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""extra_vars_guard: refuse Ansible's own variables (``ansible_*``) and Switchyard's command-valued ones
when they arrive as extra vars, unless the inventory allows it.

Whoever may launch a job with extra vars (``-e``, an AWX template that prompts for variables) would
otherwise run any argv as root on every Docker host. Every ``ansible_*`` variable is refused, not a list
of the dangerous ones: too many of them run something or decide where the job goes - the interpreters
and their fallback list, ``ansible_remote_tmp`` (put into a shell command by the sh plugin's mkdtemp),
the become and ssh settings (a ProxyCommand runs on the controller), ``ansible_paramiko_proxy_command``,
``ansible_host`` (the job's secrets sent to another machine) - and Ansible adds more with each release.

Extra vars are the highest precedence, so the task cannot tell them apart from task_vars: it reads what
ansible-playbook was given
(``load_extra_vars``: ``-e k=v``, ``-e '{json}'``, ``-e @file`` as AWX and ansible-runner pass them).
It runs on the controller and never connects to the host, so an ``ansible_python_interpreter`` given
as an extra var is refused before anything runs with it."""

from __future__ import annotations

import fnmatch

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

SWITCH = "switchyard_allow_commands_from_extra_vars"
# Names the inventory accepts as extra vars one by one (an AWX template's own ansible_python_interpreter),
# without opening the switch to every other one.
ALLOWLIST = "switchyard_extra_vars_allowed"

# Switchyard's variables whose value is a command or the policy that keeps unverified images off the hosts,
# and every variable of Ansible's own: they decide what runs as root on the host and how (interpreters,
# shell, temporary directory, become), what runs on the controller (ssh options, proxy commands), which host
# the job - with its secrets - goes to, and whether the images it deploys are verified.
COMMAND_VARIABLES = (
    "switchyard_signature_command",
    "switchyard_cosign_cli",
    "switchyard_verify_signatures",
    "switchyard_require_sbom",
    "switchyard_cosign_public_key",
    "switchyard_preflight_skip",
    "ansible_*",
)
# What the roles decide themselves - their internal variables (__*), what they register or set_fact (the plan,
# the digests verified, the preflight's answer...) and the parameters one role passes another through
# include_role vars. Extra vars outrank all of these: given with -e, they would deploy digests nobody verified,
# or run another migration phase. tests/unit/action checks that every such name in roles/ and playbooks/ is here.
ROLE_VARIABLES = (
    "__*",
    "switchyard_release",
    "switchyard_preflight",
    "switchyard_contract",
    "switchyard_rollback",
    "switchyard_drill",
    "switchyard_canary_gate",
    "switchyard_db_address",
    "switchyard_lb_servers",
    "switchyard_fleet_point",
    "switchyard_data_project",
    "switchyard_migrate_result",
    "switchyard_stack_*",
    "switchyard_canary_candidate",
    "switchyard_canary_hold_keeps_going",
    "switchyard_canary_judged",
    "switchyard_canary_live",
    "switchyard_canary_percent",
    "switchyard_canary_release_id",
    "switchyard_migrate_phase",
    "switchyard_migrate_release_id",
    "switchyard_migrate_target",
    "switchyard_migrate_old_color",
    "switchyard_migrate_color",
    "switchyard_migrate_images",
    "switchyard_migrate_layout",
    "switchyard_migrate_color_env",
    "switchyard_report_release_id",
    "switchyard_report_run",
    "status_*",
)

ARGUMENT_SPEC = {
    "names": {"type": "list", "elements": "str", "default": list(COMMAND_VARIABLES + ROLE_VARIABLES)},
    "switch": {"type": "str", "default": SWITCH},
    "allowlist": {"type": "str", "default": ALLOWLIST},
}


def switch_value(name, value):
    """The switch as a bool: true/false and their usual spellings only (a typo never allows commands)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in {str(v).lower() for v in BOOLEANS_TRUE}:
        return True
    if text in {str(v).lower() for v in BOOLEANS_FALSE}:
        return False
    raise AnsibleActionFail(f"{name} must be true or false (got {value!r}); set it in the inventory.")


def commands_given(extra_var_names, names):
    """The extra vars that match one of the names (shell-style patterns), sorted."""
    return sorted(n for n in extra_var_names if any(fnmatch.fnmatchcase(n, p) for p in names))


def refused(extra_var_names, names, switch, allowed, allowlist=ALLOWLIST, accepted=()):
    """The refusal message for these extra vars, or None. accepted: the names the inventory's allowlist takes as
    extra vars. The switch and the allowlist themselves are always refused as extra vars: a launcher who could
    set them could allow their own commands."""
    given = [name for name in commands_given(extra_var_names, names) if name not in set(accepted)]
    problems = []
    for own in (switch, allowlist):
        if own in extra_var_names:
            problems.append(
                f"{own} was given as an extra var: it is only read from the inventory (group_vars or host_vars), "
                "never from -e, an AWX survey or prompted variables"
            )
    if given and (not allowed or switch in extra_var_names or allowlist in extra_var_names):
        one = len(given) == 1
        problems.append(
            f"{', '.join(given)} {'was given as an extra var' if one else 'were given as extra vars'}: "
            f"{'it decides' if one else 'they decide'} what runs as root on the hosts and how (a command, an "
            "interpreter, the shell or its temporary directory, become), what runs on the controller (ssh options, "
            "proxy commands), which host the job and its secrets go to, whether the images deployed are verified "
            "and the host checked, or what the roles decide themselves (the plan, the verified digests, the phase), "
            "so whoever launches the job could run anything. Set "
            f"{'it' if one else 'them'} in the inventory, list {'it' if one else 'them'} in {allowlist} in the "
            f"inventory, or set {switch}: true in the inventory to accept every one as an extra var"
        )
    if not problems:
        return None
    return (
        "Refused before anything changed: "
        + "; ".join(problems)
        + f". Variables refused as extra vars unless {switch} is true in the inventory: {', '.join(names)}."
    )


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        extra_vars = load_extra_vars(self._loader)
        switch = args["switch"]
        allowed = False
        if switch in task_vars and switch not in extra_vars:
            allowed = switch_value(switch, self._templar.template(task_vars[switch]))
        accepted = []
        if args["allowlist"] in task_vars and args["allowlist"] not in extra_vars:
            accepted = self._templar.template(task_vars[args["allowlist"]])
            if not isinstance(accepted, list) or not all(isinstance(name, str) for name in accepted):
                raise AnsibleActionFail(f"{args['allowlist']} must be a list of variable names (got {accepted!r})")
        message = refused(set(extra_vars), args["names"], switch, allowed, args["allowlist"], accepted)
        if message:
            raise AnsibleActionFail(message)

        given = commands_given(extra_vars, args["names"])
        result.update(
            changed=False,
            accepted=given,
            msg=f"{', '.join(given)} accepted as extra vars ({switch} or {args['allowlist']} in the inventory)"
            if given
            else "No command-valued variable among the extra vars.",
        )
        return result
