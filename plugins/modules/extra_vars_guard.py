#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: extra_vars_guard
short_description: Refuse ansible_* and command-valued variables given as extra vars, unless the inventory allows them
version_added: 0.1.0
description:
  - Fails when a variable whose value is a command, or one of Ansible's own, arrives as an extra var (C(-e), an AWX
    survey, variables prompted on launch, a workflow's artifacts), since whoever may launch the job could otherwise
    run any command as root on every host. The message names each such variable and the switch.
  - The policy that keeps unverified images off the hosts is refused too - C(switchyard_verify_signatures),
    C(switchyard_require_sbom), C(switchyard_cosign_public_key), C(switchyard_cosign_cli) and
    C(switchyard_preflight_skip) - so a launcher cannot turn verification or a host check off.
  - So are the variables the roles decide themselves - their internal ones (C(__*)), what they register or set
    (the plan C(switchyard_release), C(switchyard_preflight), C(switchyard_db_address)...) and the parameters one role
    passes another (C(switchyard_stack_*), C(switchyard_migrate_phase)...) - since extra vars outrank them, and given
    with C(-e) they would deploy digests nobody verified or run another migration phase.
  - C(switchyard_signature_command) and every variable named C(ansible_*) are refused by default - not a list of the
    dangerous ones, since so many run something or send the job elsewhere - the interpreters and
    C(ansible_interpreter_python_fallback), C(ansible_shell_executable), C(ansible_remote_tmp) (put into a shell
    command by the C(sh) plugin), the become settings, the ssh, scp and sftp arguments and
    C(ansible_paramiko_proxy_command) (a C(ProxyCommand) run on the controller), C(ansible_host) (the job and its
    secrets sent to another machine).
  - They are accepted as extra vars when the variable named by O(switch) is true in the inventory, or one by one when
    the inventory lists them in the variable named by O(allowlist). Both are always refused as extra vars.
  - Reads what ansible-playbook was given as extra vars (C(-e k=v), C(-e '{json}'), C(-e @file) as AWX and
    ansible-runner pass them), on the controller; it never connects to the host, so a refused interpreter is never
    used.
  - The roles of the collection run it first (the app role, on which every role depends).
author:
  - Switchyard developers (@switchyard)
attributes:
  action:
    description: Runs on the controller only (action plugin).
    support: full
  check_mode:
    description: Refuses in check mode too.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
  platform:
    description: The controller.
    support: full
    platforms: posix
options:
  names:
    description:
      - Names (shell-style patterns) of the variables refused as extra vars.
    type: list
    elements: str
    default:
      - switchyard_signature_command
      - switchyard_cosign_cli
      - switchyard_verify_signatures
      - switchyard_require_sbom
      - switchyard_cosign_public_key
      - switchyard_preflight_skip
      - ansible_*
      - "__*"
      - switchyard_release
      - switchyard_preflight
      - switchyard_contract
      - switchyard_rollback
      - switchyard_drill
      - switchyard_canary_gate
      - switchyard_db_address
      - switchyard_lb_servers
      - switchyard_fleet_point
      - switchyard_data_project
      - switchyard_migrate_result
      - switchyard_stack_*
      - switchyard_canary_candidate
      - switchyard_canary_hold_keeps_going
      - switchyard_canary_judged
      - switchyard_canary_live
      - switchyard_canary_percent
      - switchyard_canary_release_id
      - switchyard_migrate_phase
      - switchyard_migrate_release_id
      - switchyard_migrate_target
      - switchyard_migrate_old_color
      - switchyard_migrate_color
      - switchyard_migrate_images
      - switchyard_migrate_layout
      - switchyard_migrate_color_env
      - switchyard_report_release_id
      - switchyard_report_run
      - status_*
  switch:
    description:
      - The variable that, true in the inventory (group_vars or host_vars), accepts O(names) as extra vars. Only
        C(true) or C(false) (and their usual spellings); anything else is an error.
    type: str
    default: switchyard_allow_commands_from_extra_vars
  allowlist:
    description:
      - The variable that, in the inventory, lists the names accepted as extra vars one by one (such as an AWX job
        template's own C(ansible_python_interpreter)), without opening O(switch) to every other one. Always refused
        as an extra var itself.
    type: str
    default: switchyard_extra_vars_allowed
"""

EXAMPLES = r"""
- name: Refuse commands given as extra vars unless the inventory allows them
  switchyard.release.extra_vars_guard:

# ansible-playbook release.yml -e '{"switchyard_signature_command": ["sh", "-c", "id > /tmp/pwned"]}'
# ansible-playbook release.yml -e ansible_remote_tmp='/tmp/$(id > /tmp/pwned)'
# fail with:
#   Refused before anything changed: switchyard_signature_command was given as an extra var: it decides
#   what runs as root on the hosts ... set switchyard_allow_commands_from_extra_vars: true in the
#   inventory to accept it as an extra var.
"""

RETURN = r"""
accepted:
  description: The command-valued variables given as extra vars and accepted because the switch is true.
  returned: success
  type: list
  elements: str
  sample: [switchyard_signature_command]
"""
