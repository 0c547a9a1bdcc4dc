# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The traffic module: the colors' weights and states on every route of an application's LB, whatever
its kind, and (optionally) the step in the ledger, with the weights the LB shows afterwards.

The release lock is checked before anything moves when a ledger record is asked for: a run that
lost its lock must not move traffic under another release.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    MAX_WEIGHT,
    LBError,
    busy,
    observed_weights,
    shares,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import require_holder

RECORD_ACTIONS = ("step", "promote", "rollback", "fail")


def asked(options):
    """{color: value} of a weights/states option (argument_spec fills the colors not given with None)."""
    return {color: value for color, value in (options or {}).items() if value is not None}


class Traffic:
    """Moves (or reads) the traffic of every route, in order; records the result when asked."""

    def __init__(self, module, runner=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.lb = load_balancer(self.params["lb"], self.runner)
        self.result = {"changed": False, "kind": self.lb.kind, "routes": []}

    def run(self):
        weights, states = asked(self.params["weights"]), asked(self.params["states"])
        for color, weight in weights.items():
            if not 0 <= weight <= MAX_WEIGHT:
                raise InvalidParameters(f"weights.{color}={weight}: a weight is from 0 to {MAX_WEIGHT}")
        if not self.params["routes"]:
            raise InvalidParameters("routes: give at least one route")
        record = self.params["record"]
        if record and not self.module.check_mode:
            self.require_lock(record)
        for route in self.params["routes"]:
            if weights or states:
                moved = self.lb.shift(
                    route,
                    weights,
                    states,
                    up_timeout=self.params["up_timeout"],
                    drain_timeout=self.params["drain_timeout"],
                    check_mode=self.module.check_mode,
                )
            else:
                servers = self.lb.servers(route)
                moved = {"route": route, "changed": False, "after": servers, "shares": shares(servers)}
            self.result["routes"].append(moved)
            self.result["changed"] = self.result["changed"] or moved["changed"]
        self.result["servers"] = {r["route"]: r["after"] for r in self.result["routes"]}
        self.result["weights"] = observed_weights(self.result["routes"])
        if self.params["require_idle"]:
            why = busy(self.result["servers"], self.params["require_idle"])
            if why:
                raise LBError(f"{self.params['require_idle']} is not idle: {why}")
        diffs = [d for r in self.result["routes"] for d in r.pop("diff", [])]
        if diffs and self.module._diff:
            self.result["diff"] = diffs
        if record:
            self.record(record)
        return self.result

    # -- the ledger ----------------------------------------------------------------------------
    def state_params(self, record):
        return {"app": self.params["app"], "path": store.state_directory(self.params), **record}

    def require_lock(self, record):
        params = self.state_params(record)
        lock, now = store.read_state(params)[1], store.utc_now()
        if record["action"] == "step":
            require_holder(lock, params["app"], record["release_id"], "step", now)

    def record(self, record):
        step = dict(record.get("step") or {})
        action = record["action"]
        if action == "step":
            if not step.get("name"):
                raise InvalidParameters("record.step.name is required with record.action=step")
            step["weights"] = self.result["weights"]
        params = store.action_params(
            self.state_params(record),
            action=action,
            step=step if action == "step" else None,
            weights=self.result["weights"] if action != "step" else None,
        )
        if self.module.check_mode:
            self.result["record"] = {"skipped": True, "action": action, "release_id": record["release_id"]}
            return
        outcome = store.run_action(params, host=store.hostname(), pid=store.process_id())
        self.result["changed"] = self.result["changed"] or outcome["changed"]
        self.result["ledger"] = outcome["ledger"]
        self.result["release"] = outcome["release"]
        self.result["lock_state"] = outcome["lock_state"]
