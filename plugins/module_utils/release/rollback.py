# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback module: lock, traffic back, ledger, unlock, in one call.

The plan (release/plan.py) says where the traffic goes and whether it may; the LB interface
moves it on every route; the ledger records the weights the LB shows afterwards. If moving the
traffic fails, the rollback is recorded as failed and its lock released, so the next attempt (the
socket back, say) is not refused by this one's own lock.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import observed_weights
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.manager import new_release_id
from ansible_collections.switchyard.release.plugins.module_utils.release.plan import plan_rollback


class RollbackManager:
    def __init__(self, module, runner=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.lb = load_balancer(self.params["lb"], self.runner)
        self.result = {"changed": False, "routes": []}
        self.token = None

    def base(self):
        return {
            "app": self.params["app"],
            "path": self.params["path"],
            "owner": self.params["owner"],
            "lock_ttl": self.params["lock_ttl"],
        }

    def run(self):
        self.lb.check_routes(self.params["routes"])  # a name the LB cannot take: refused before the lock
        ledger, _lock = store.read_state(self.params)
        rid = self.params.get("release_id") or new_release_id(store.utc_now(), "rollback")
        plan = plan_rollback(ledger, rid, force=self.params["force_rollback"])
        self.result["plan"] = plan
        if plan["refused"]:
            raise LedgerError(plan["refused"], ledger=ledger)
        weights = plan["weights"]
        states = {plan["to"]: "ready", plan["away"]: "maint"}
        begin = store.action_params(
            self.base(),
            action="begin",
            take_lock=True,
            lock_token=self.params.get("lock_token"),
            force=self.params["force_lock"],
            release_id=plan["id"],
            kind="rollback",
            version=plan["version"],
            color=plan["to"],
            from_color=plan["away"],
        )
        if self.module.check_mode:
            store.run_action(begin, check_mode=True, host=store.hostname(), pid=store.process_id())
            self.shift(weights, states)
            return self.result
        begun = store.run_action(begin, host=store.hostname(), pid=store.process_id())
        self.token = begun["lock_token"]
        self.result["takeover"] = begun["takeover"]
        try:
            self.shift(weights, states)
        except SwitchyardError as exc:
            self.end("fail", plan, f"moving the traffic to {plan['to']} failed: {exc.msg}")
            raise
        except BaseException:
            # A bug or an interruption: the lock must not outlive this call (the next attempt would be refused).
            self.unlock()
            raise
        owner = self.params["owner"] or store.default_owner(store.hostname())
        self.end("rollback", plan, self.params["reason"] or f"rollback by {owner}")
        return self.result

    def unlock(self):
        """Release this run's lock (never another's): whether it is free of this run now."""
        try:
            store.run_action(
                store.action_params(self.base(), action="unlock", release_id="unlock", lock_token=self.token),
                host=store.hostname(),
                pid=store.process_id(),
            )
        except SwitchyardError:
            return False  # the original failure is what the operator must see
        return True

    def shift(self, weights, states):
        try:
            moved = self.lb.shift_routes(
                self.params["routes"],
                weights,
                states,
                up_timeout=self.params["up_timeout"],
                check_mode=self.module.check_mode,
                best_effort=True,  # an emergency: every route that can move does
            )
        except SwitchyardError as exc:
            self.result["routes"] = exc.details.get("routes", [])
            self.result["weights"] = observed_weights(self.result["routes"])
            raise
        for route in moved:
            route.pop("diff", None)
        self.result["routes"] = moved
        self.result["changed"] = self.result["changed"] or any(m["changed"] for m in moved)
        self.result["weights"] = observed_weights(moved)

    def end(self, action, plan, reason):
        """Record the outcome with the weights the LB shows (none when nothing could be read), unlock.
        When the ledger cannot be written (a full disk), the lock is still released: a file can be
        removed where none can be written."""
        try:
            ended = store.run_action(
                store.action_params(
                    self.base(),
                    action=action,
                    release_id=plan["id"],
                    color=plan["to"] if action == "rollback" else None,
                    reason=reason,
                    weights=self.result.get("weights") or None,
                    lock_token=self.token,
                ),
                host=store.hostname(),
                pid=store.process_id(),
            )
        except SwitchyardError as exc:
            released = self.unlock()
            exc.msg = f"{exc.msg} (recording {action} after moving the traffic failed; " + (
                "the lock was released)" if released else "the lock could NOT be released)"
            )
            raise
        self.result["changed"] = True
        self.result.update(ledger=ended["ledger"], release=ended["release"], lock_state=ended["lock_state"])
