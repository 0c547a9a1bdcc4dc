# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nginx_upstream module: one route of the Nginx LB through the backend, under the run's lease."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.backend import Nginx
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease, lease_argument_spec

COLOR_OPTIONS = {c: {"type": "int"} for c in COLORS}
STATE_OPTIONS = {c: {"type": "str", "choices": ["ready", "drain", "maint"]} for c in COLORS}

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "container": {"type": "str", "required": True},
    "route": {"type": "str", "required": True},
    "weights": {"type": "dict", "options": COLOR_OPTIONS},
    "states": {"type": "dict", "options": STATE_OPTIONS},
    "up_timeout": {"type": "int", "default": 30},
    "drain_timeout": {"type": "int", "default": 0},
    "timeout": {"type": "int", "default": 10},
    "reload": {"type": "bool", "default": False},
    **lease_argument_spec(),
}


def given(options):
    """{color: value} of the colors given (suboptions left out are None)."""
    return {c: v for c, v in (options or {}).items() if v is not None}


class NginxUpstreamManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.lease = Lease(self.params.get("lease"), module.check_mode, warn=module.warn)
        self.lb = Nginx(
            {"dir": self.params["dir"], "container": self.params["container"], "timeout": self.params["timeout"]},
            CommandRunner(module),
        )

    def run(self):
        # Every refusal (route name, weights, states, timeouts) before the lease or Nginx is touched.
        self.lb.check_route(self.params["route"])
        for option in ("up_timeout", "drain_timeout", "timeout"):
            if self.params[option] < 0 or (option == "timeout" and self.params[option] == 0):
                raise InvalidParameters(f"{option}={self.params[option]}: use a number of seconds (timeout > 0)")
        weights, states = given(self.params["weights"]), given(self.params["states"])
        with self.lease.kept():
            result = self.lb.shift(
                self.params["route"],
                weights,
                states,
                up_timeout=self.params["up_timeout"],
                drain_timeout=self.params["drain_timeout"],
                check_mode=self.module.check_mode,
                guard=self.lease.guard(),
            )
            if self.params["reload"] and not result["changed"]:
                result.update(self.lb.reload(check_mode=self.module.check_mode, guard=self.lease.guard()))
        if not self.module._diff:
            result.pop("diff", None)
        return result
