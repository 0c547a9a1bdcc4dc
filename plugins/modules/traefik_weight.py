#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: traefik_weight
short_description: Read and set the weights and states of one route's colors on the Traefik load balancer
version_added: 0.1.0
description:
  - Shifts the traffic of one route between its blue and green colors on the Traefik LB of the lb role
    (C(switchyard_lb_kind=traefik)) - the weighted service C(<route>) over the services C(<route>-blue) and
    C(<route>-green) - by rewriting the route's file in Traefik's watched directory C(<dir>/etc/dynamic/)
    (a temporary file renamed into place; Traefik reloads it without a restart, and a restart loads it again).
  - Reads first, from the route file's record and from Traefik's API (inside the container, on its loopback-only
    entrypoint), and does nothing when the weights and states already match.
  - Applies in an order that never leaves the route without capacity - a color leaving drain or maint is first
    listed at weight 0 (health-checked, no traffic) until Traefik reports it UP, then the weights and states in one
    file, then maint after the drain wait. A drained color stays health-checked (a check router on the internal
    entrypoint uses its service), so one Traefik has checked UP since the last load of its dynamic files takes
    its weight in that one file, with no weight-0 step. After each write, polls the API until it shows the new file
    loaded without error (the read-back); a timeout fails naming what the API shows (an invalid file is never
    applied).
  - Refuses, before anything is written, an unknown route or color, a weight outside 0..256, a weight raised for a
    color that is not UP, and a change that leaves the route with zero total weight on its UP colors.
  - V(drain) takes the color out of the weighted service (no new traffic; the canary header still reaches it),
    V(maint) also removes its header router (nothing reaches it). Their weight is kept in the route file's
    record and comes back when they are ready again.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.lease
attributes:
  check_mode:
    description: All reads, no writes; the result and the diff say what would change.
    support: full
  diff_mode:
    description: The colors' weights and states, and the route file, before and after.
    support: full
options:
  dir:
    description:
      - The LB directory of the lb role (C(switchyard_lb_dir)), holding C(etc/switchyard.json) and C(etc/dynamic/).
    type: path
    required: true
  container:
    description: The Traefik container (C(<app>-lb-traefik-1)); its API is read in it with C(docker exec).
    type: str
    required: true
  route:
    description:
      - The route, one of the lb role's C(switchyard_lb_routes) (a lowercase letter or digit, then up to 47 of
        C(a-z 0-9 _ -)); anything else is refused before anything is read.
    type: str
    required: true
  weights:
    description: The weight of each color (0 to 256); a color not given keeps its weight.
    type: dict
    suboptions:
      blue:
        description: Weight of blue.
        type: int
      green:
        description: Weight of green.
        type: int
  states:
    description:
      - The state of each color - V(ready), V(drain) (no new traffic; X-Canary still reaches it) or V(maint)
        (nothing reaches it); a color not given keeps its state.
    type: dict
    suboptions:
      blue:
        description: State of blue.
        type: str
        choices: [ready, drain, maint]
      green:
        description: State of green.
        type: str
        choices: [ready, drain, maint]
  initial_weights:
    description:
      - The weights a route without a file yet starts with (the lb role's first run, C(switchyard_lb_initial_weights));
        ignored once the route has its file.
    type: dict
    suboptions:
      blue:
        description: Initial weight of blue.
        type: int
        required: true
      green:
        description: Initial weight of green.
        type: int
        required: true
  up_timeout:
    description: Seconds a color leaving maint or drain may take to be UP before any weight is raised.
    type: int
    default: 30
  drain_timeout:
    description:
      - Seconds to wait, after a color leaves the weighted service, until its connections end (0 does not wait).
    type: int
    default: 0
  timeout:
    description: Seconds for Traefik to show a written file loaded (at least 3 are waited).
    type: int
    default: 10
  ready_timeout:
    description:
      - Seconds to wait first until Traefik answers C(/ping) and its API shows the route's file loaded - after a
        restart (the lb role passes C(switchyard_lb_wait_timeout)); 0 does not wait (a Traefik that does not answer
        fails the module at once).
    type: int
    default: 0
  docker_cli:
    description: The docker client that reaches the LB's engine.
    type: str
    default: docker
notes:
  - A color at weight 0 stays in the weighted service (Traefik accepts weight 0 and sends it nothing) and keeps
    being health-checked; so does a drained one (its check router). A color in maint is not checked.
  - Traefik rebuilds every service on any load of its dynamic files (any route's, and when it starts), and a rebuilt
    service counts as UP until its first check; before trusting UP for a color gaining traffic or leaving drain,
    the module waits until 1.5 check intervals have passed since the watched directory last changed (plus the
    provider's throttle) or Traefik's start. A DOWN color already holding weight can still get requests for up to
    one check interval after a reload.
  - Every writer of the route files (this module, the traffic module's canary) holds C(<dir>/etc/.switchyard.lock)
    (flock) from its read to its read-back, so no change is lost to a concurrent one.
  - A file Traefik does not show loaded within O(timeout) is replaced by the previous one (or removed).
"""

EXAMPLES = r"""
- name: Send 10 % of new traffic to green
  switchyard.release.traefik_weight:
    dir: /var/lib/switchyard/shop/lb
    container: shop-lb-traefik-1
    route: api
    weights: {blue: 230, green: 26}

- name: Roll back - everything to blue, green in maint after its requests ended
  switchyard.release.traefik_weight:
    dir: /var/lib/switchyard/shop/lb
    container: shop-lb-traefik-1
    route: api
    weights: {blue: 256, green: 0}
    states: {green: maint}
    drain_timeout: 30
"""

RETURN = r"""
route:
  description: The route.
  returned: always
  type: str
before:
  description: Per color before the change - weight, state, up, status (UP, DOWN, DRAIN, MAINT), sessions.
  returned: when the route could be read
  type: dict
after:
  description: Per color after the change, as Traefik's API shows it (the plan, in check mode).
  returned: success
  type: dict
shares:
  description: Percent of new traffic per color (weight over the total of ready, UP colors).
  returned: success
  type: dict
  sample: {blue: 90.0, green: 10.0}
method:
  description: V(file) - the route file rewritten in the watched directory.
  returned: always
  type: str
commands:
  description: The files written (would be written, in check mode), in order, and why.
  returned: always
  type: list
  elements: str
drain:
  description: How long the drain waited and the connections left.
  returned: when a color was drained with drain_timeout
  type: dict
ready_waited_s:
  description: Seconds waited for Traefik to answer with the route loaded (O(ready_timeout)).
  returned: when O(ready_timeout) is above 0
  type: float
settled_s:
  description:
    - Seconds waited before trusting that a color gaining traffic or leaving drain is UP - Traefik counts a service
      it has just rebuilt (on every load of its dynamic files, and when it starts) as UP until its first check.
  returned: when it waited
  type: float
lifted_checked:
  description:
    - The colors leaving drain that took their weight in one write, Traefik having checked them UP since the last
      load of its dynamic files (the others leaving drain or maint are listed at weight 0 first, see O(up_timeout)).
  returned: when there were any
  type: list
  elements: str
timings:
  description: Milliseconds from each write to Traefik showing it loaded (C(loaded_ms)), and in all (C(total_ms)).
  returned: when something was written
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.backend import Traefik, check_change
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.dynamic import check_route_name
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease, lease_argument_spec

COLOR_WEIGHTS = {"blue": {"type": "int"}, "green": {"type": "int"}}
COLOR_STATES = {c: {"type": "str", "choices": ["ready", "drain", "maint"]} for c in ("blue", "green")}

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "container": {"type": "str", "required": True},
    "route": {"type": "str", "required": True},
    "weights": {"type": "dict", "options": COLOR_WEIGHTS},
    "states": {"type": "dict", "options": COLOR_STATES},
    "initial_weights": {
        "type": "dict",
        "options": {"blue": {"type": "int", "required": True}, "green": {"type": "int", "required": True}},
    },
    "up_timeout": {"type": "int", "default": 30},
    "drain_timeout": {"type": "int", "default": 0},
    "timeout": {"type": "int", "default": 10},
    "ready_timeout": {"type": "int", "default": 0},
    "docker_cli": {"type": "str", "default": "docker"},
    **lease_argument_spec(),
}


class TraefikWeight:
    """The module: one route's shift on the Traefik backend, under the run's lease."""

    def __init__(self, module):
        params = module.params
        # Refused before anything is read: the route name and the values, naming the parameter.
        check_route_name(params["route"])
        check_change(params["weights"], params["states"])
        if params["initial_weights"]:
            check_change(params["initial_weights"], None)
        self.module = module
        self.lease = Lease(params.get("lease"), module.check_mode, warn=module.warn)
        options = {
            "kind": "traefik",
            "dir": params["dir"],
            "container": params["container"],
            "timeout": params["timeout"],
            "docker_cli": params["docker_cli"],
            "initial_weights": params["initial_weights"],
        }
        self.lb = Traefik(options, CommandRunner(module))
        self.result = {"route": params["route"], "changed": False, "method": "file", "commands": []}

    def run(self):
        params = self.module.params
        with self.lease.kept():
            waited = self.lb.wait_ready(params["route"], params["ready_timeout"]) if params["ready_timeout"] else None
            result = self.lb.shift(
                params["route"],
                {c: w for c, w in (params["weights"] or {}).items() if w is not None},
                {c: s for c, s in (params["states"] or {}).items() if s is not None},
                up_timeout=params["up_timeout"],
                drain_timeout=params["drain_timeout"],
                check_mode=self.module.check_mode,
                guard=self.lease.guard(),
            )
        if waited is not None:
            result["ready_waited_s"] = waited
        self.result = result
        return result

    def partial_result(self):
        return dict(getattr(self.lb, "last", None) or self.result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, TraefikWeight)


if __name__ == "__main__":
    main()
