# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release_state module: validate, run the action in the store, add the plan and the diff."""

from __future__ import annotations

import random

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import utc_now
from ansible_collections.switchyard.release.plugins.module_utils.release import plan as plans
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import public_lock, with_token
from ansible_collections.switchyard.release.plugins.module_utils.release.params import validate_params
from ansible_collections.switchyard.release.plugins.module_utils.release.store import (
    default_owner,
    hostname,
    process_id,
    run_action,
    state_directory,
)


def new_release_id(now, kind=None):
    return plans.release_id(now, f"{random.randrange(65536):04x}", None if kind == "release" else kind)


def make_plan(ledger, lock_state, options, now):
    """The plan options' kind decides which plan; the id is new unless a paused release resumes."""
    kind = options["kind"]
    if kind == "release":
        if not options.get("version"):
            raise LedgerError("plan.version is required with plan.kind=release")
        return plans.plan_release(
            ledger,
            lock_state,
            options["version"],
            options["canary_steps"],
            new_release_id(now),
            stop_after_step=options.get("stop_after_step"),
            migrations_level=options.get("migrations_level"),
            strategy=options.get("strategy") or "canary",
        )
    if kind == "rollback":
        return plans.plan_rollback(ledger, new_release_id(now, "rollback"), force=options["force_rollback"])
    return plans.plan_contract(
        ledger, now, new_release_id(now, "contract"), options["rollback_window"], options["migrations"]
    )


class ReleaseStateManager:
    def __init__(self, module):
        self.module = module
        self.result = {"changed": False}

    def run(self):
        host = hostname()
        params = validate_params(with_token(dict(self.module.params)))
        params["path"] = state_directory(params)
        params["owner"] = params["owner"] or default_owner(host)
        result = run_action(params, check_mode=self.module.check_mode, host=host, pid=process_id())
        before = result.pop("before")
        result["lock"] = public_lock(result["lock"])  # the token is returned alone, as lock_token, to its holder
        if self.module._diff:
            before = {**before, "lock": public_lock(before["lock"])}
            result["diff"] = {"before": before, "after": {"ledger": result["ledger"], "lock": result["lock"]}}
        if params["action"] == "plan":
            result["plan"] = make_plan(result["ledger"], result["lock_state"], params["plan"], utc_now())
            if result["plan"]["refused"]:
                self.result = result
                raise LedgerError(result["plan"]["refused"])
        return result
