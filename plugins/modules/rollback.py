#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback
short_description: Roll an application back in one call - lock, traffic back, ledger, unlock
version_added: 0.1.0
description:
  - Reads the release ledger and decides where the traffic goes back to - during an unfinished release (paused at a
    canary step, or killed), to the live color; otherwise to the previous color (the last promotion undone).
  - Refuses when there is nothing to go back to, when the previous color was retired by a contract, or when contract
    migrations ran after it left (unless O(force_rollback)) - before anything changes.
  - Takes the release lock and opens a V(rollback) entry in the ledger (one write), moves all new traffic to that
    color on every route of the LB (the other color in maint, so cookie-pinned users move too), records the outcome
    with the weights the LB shows, and releases the lock.
  - If the traffic cannot be moved, the rollback is recorded as failed and its lock released, so a new attempt is
    not refused by this one's lock. When the admin socket of the LB is unreachable, the LB kind's fallback is used
    (for HAProxy, a validated and verified reload carrying weights and states).
  - Run inside a playbook that took the lock itself (to start a stopped color first, say), it uses that run's
    O(lock_token) and O(release_id).
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.lb
  - switchyard.release.state
attributes:
  check_mode:
    description: Plans, reads the LB, says which commands it would send; takes no lock and writes nothing.
  diff_mode:
    description: Not reported; the result's routes say before and after.
    support: none
options:
  owner:
    description: Who holds the lock. Defaults to C(<login user>@<hostname>).
    type: str
  lock_ttl:
    description: Seconds after which the lock expires.
    type: int
    default: 3600
  lock_token:
    description:
      - The token of this run's release lock, when the caller took it already (M(switchyard.release.release_state)
        V(lock)); a new lock is taken with a new token otherwise.
    type: str
  release_id:
    description: The rollback's id in the ledger (the one the caller locked with). Defaults to a new id.
    type: str
  force_lock:
    description: Take the lock although another run holds it and it has not expired (recorded in the ledger).
    type: bool
    default: false
  force_rollback:
    description: Roll back although contract migrations ran after the previous color left.
    type: bool
    default: false
  up_timeout:
    description: Seconds the color taking the traffic may take to be UP.
    type: int
    default: 30
  reason:
    description: Why, stored on the rollback's ledger entry. Defaults to C(rollback by <owner>).
    type: str
"""

EXAMPLES = r"""
- name: Roll shop back
  switchyard.release.rollback:
    app: shop
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    reason: rollback.yml by ops@controller
  register: rolled
"""

RETURN = r"""
plan:
  description: The rollback plan - id, mode (canary or previous), to, away, version, weights, undoes, refused.
  returned: always
  type: dict
routes:
  description: Per route - before, after, shares, commands.
  returned: always
  type: list
  elements: dict
weights:
  description: Color to weight as the LB shows them afterwards.
  returned: when the traffic was moved
  type: dict
ledger:
  description: The ledger after the rollback.
  returned: when not in check mode
  type: dict
release:
  description: The rollback's ledger entry.
  returned: when not in check mode
  type: dict
takeover:
  description: The take-over of another run's lock, when there was one.
  returned: when not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.rollback import RollbackManager
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

ARGUMENT_SPEC = {
    **state_argument_spec(),
    **lb_argument_spec(),
    "owner": {"type": "str"},
    "lock_ttl": {"type": "int", "default": 3600},
    "lock_token": {"type": "str", "no_log": False},
    "release_id": {"type": "str"},
    "force_lock": {"type": "bool", "default": False},
    "force_rollback": {"type": "bool", "default": False},
    "up_timeout": {"type": "int", "default": 30},
    "reason": {"type": "str"},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, RollbackManager)


if __name__ == "__main__":
    main()
