#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_upstream
short_description: Read and set the weights and states of one route of the Nginx LB (validated, verified reload)
version_added: 0.2.0
description:
  - Shifts traffic between the blue and green colors of one route of the Nginx the lb role runs
    (C(switchyard_lb_kind=nginx)). Open-source Nginx has no runtime weights, so the route's weights and states
    live in C(<dir>/etc/routes.conf) (its first line holds them as JSON; the rest is rendered from it).
  - Reads first and compares the weights and states the file holds, and the generation Nginx serves with the
    file's; does nothing when both match. A file Nginx has not loaded (C(loaded=false) on each color) is a change,
    even with the same weights - rewritten and reloaded, so a re-run converges.
  - A change, holding the writers' lock C(<dir>/etc/.switchyard.lock), rewrites C(routes.conf) atomically (a
    temporary file renamed in the mounted directory), checks it with C(nginx -t) in O(container), reloads
    gracefully (C(nginx -s reload) - the old workers finish their requests), and waits until the workers that
    answer serve the new file (a generation token on an internal listener).
  - Any failure after the write (Nginx refusing the file, the lease lost, the container stopped, the generation
    not served in O(timeout)) rewrites the previous C(routes.conf), and reloads it again when a reload was sent,
    before the task fails with Nginx's message and what was restored.
  - Runs C(sh), C(cat), C(getent) and C(curl) in O(container) (see docs/nginx_upstream.md).
  - Weight 0, V(drain) and V(maint) take no new traffic (Nginx refuses C(weight=0)); the header canary
    (C(X-Canary), trusted sources only) still reaches a color at weight 0 or in V(drain), not one in V(maint).
  - Refuses, before any change, an unknown route, a weight outside 0..256, new traffic for a color whose health
    path does not answer 200 from the LB container, and a change that leaves the route without a healthy color
    with weight.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.lease
attributes:
  check_mode:
    description: All reads, no writes; the result and the diff say what would change.
    support: full
  diff_mode:
    description: Weights and states per color, and C(routes.conf), before and after.
    support: full
options:
  dir:
    description: The LB directory of the lb role (C(switchyard_lb_dir)); the file is C(<dir>/etc/routes.conf).
    type: path
    required: true
  container:
    description: The Nginx container (C(<app>-lb-nginx-1)), where the file is validated and Nginx reloaded.
    type: str
    required: true
  route:
    description:
      - The route (a name of C(switchyard_lb_routes)) - a lowercase letter or digit, then up to 47 of C(a-z 0-9 _ -).
    type: str
    required: true
  weights:
    description: The weight of each color given, 0 to 256 (the others keep theirs).
    type: dict
    suboptions:
      blue:
        description: Blue's weight.
        type: int
      green:
        description: Green's weight.
        type: int
  states:
    description:
      - The state of each color given - V(ready), V(drain) (no new traffic; in-flight requests finish on the old
        workers) or V(maint) (no new traffic, and the header canary does not reach it either).
    type: dict
    suboptions:
      blue:
        description: Blue's state.
        type: str
        choices: [ready, drain, maint]
      green:
        description: Green's state.
        type: str
        choices: [ready, drain, maint]
  up_timeout:
    description: Seconds to wait for a color leaving drain or maint to answer its health path before it gets traffic.
    type: int
    default: 30
  drain_timeout:
    description: Seconds to wait, after a color is drained or put in maint, until its in-flight connections end.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for the reloaded workers to serve the new file (at least 10).
    type: int
    default: 10
  reload:
    description:
      - Reload (validated and verified) even when the weights and states already match - the lb role, after it
        wrote a new C(nginx.conf) into a running container.
    type: bool
    default: false
notes:
  - Colors are addressed by name (C(<route>-<color>:<port>)) and resolved per request through Docker's DNS, so
    Nginx starts and reloads whether or not a color is deployed, and a redeployed color is reached once the
    resolver's cached answer expires (up to C(switchyard_lb_resolver_hold)) or at the next reload.
"""

EXAMPLES = r"""
- name: Send 10 % of new traffic to green
  switchyard.release.nginx_upstream:
    dir: /var/lib/switchyard/shop/lb
    container: shop-lb-nginx-1
    route: api
    weights: {blue: 230, green: 26}
  register: shift

- name: Roll back - everything to blue, green in maint
  switchyard.release.nginx_upstream:
    dir: /var/lib/switchyard/shop/lb
    container: shop-lb-nginx-1
    route: api
    weights: {blue: 256, green: 0}
    states: {green: maint}

- name: Drain blue and wait for its requests to end
  switchyard.release.nginx_upstream:
    dir: /var/lib/switchyard/shop/lb
    container: shop-lb-nginx-1
    route: api
    states: {blue: drain}
    drain_timeout: 60
"""

RETURN = r"""
route:
  description: The route.
  returned: always
  type: str
before:
  description: Per color before the change - weight, state (as the file holds them), loaded (whether Nginx serves
    that file's generation), up, status (C(UP), C(DOWN), C(DRAIN), C(MAINT)), sessions (in-flight connections
    from the LB), addresses (what the name resolves to).
  returned: success
  type: dict
after:
  description: Per color after the change (the plan, in check mode), read back.
  returned: success
  type: dict
shares:
  description: Percent of new traffic per color (weight over the total of ready, UP colors).
  returned: success
  type: dict
  sample: {blue: 89.84, green: 10.16}
method:
  description: Always V(reload).
  returned: always
  type: str
commands:
  description: The changes made (would be made, in check mode), in HAProxy's order, applied by one reload.
  returned: always
  type: list
  elements: str
generation:
  description: The generation token of the file the reloaded workers serve.
  returned: when Nginx was reloaded
  type: str
drain:
  description: How long the drain waited and the connections left.
  returned: when colors were drained with drain_timeout
  type: dict
timings:
  description: Milliseconds to validate (C(validate_ms)) and to reload and verify (C(reload_ms)), from the write.
  returned: when Nginx was reloaded
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.upstream import (
    ARGUMENT_SPEC,
    NginxUpstreamManager,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, NginxUpstreamManager)


if __name__ == "__main__":
    main()
