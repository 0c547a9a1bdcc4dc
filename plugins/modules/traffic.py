#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic
short_description: Move an application's traffic between its colors on every route of its load balancer
version_added: 0.1.0
description:
  - Sets the weights (0 to 256) and states (ready, drain, maint) of the blue and green colors on every route of the
    application's load balancer, whatever its kind (O(lb.kind)), in an order that never leaves a route without an UP
    server with weight - a color leaving maint or drain first (waiting until it is UP), weights raised, weights
    lowered, then drain (waiting up to O(drain_timeout) for its sessions) and maint - and persists each change so a
    restart of the LB keeps it. Reads back and fails when the LB shows something else.
  - Without O(weights), O(states), O(canary) and O(maintenance), only reads - the servers of each route and their
    shares of new traffic.
  - With O(record), writes the result to the release ledger (a step, or the end of the release) with the weights
    the LB shows afterwards. O(record) needs O(lease) - the release lock must be held by this run before anything
    moves; a run that lost its lock changes nothing.
  - For HAProxy this is M(switchyard.release.haproxy_weight)'s Runtime API change on each route's backend.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.lb
  - switchyard.release.lease
  - switchyard.release.state
attributes:
  check_mode:
    description: Reads the LB, plans the commands, changes nothing and records nothing.
  diff_mode:
    description: Per route, the servers' weights and states, and the persisted configuration, before and after.
options:
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
    description: The state of each color; a color not given keeps its state.
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
  up_timeout:
    description: Seconds a color leaving maint or drain may take to be UP before anything else changes.
    type: int
    default: 30
  drain_timeout:
    description: Seconds to wait for the sessions of a color set to drain to end (0 does not wait).
    type: int
    default: 0
  canary:
    description:
      - The color a request with the canary header C(X-Canary) set to C(1) reaches from now on (a release sets its
        candidate) - written into the LB's canary map, so a reload or restart keeps it, and applied without a reload
        (for HAProxy, C(set map) on the Runtime API); read back. Set before the weights and states move.
      - Only the LB's trusted sources may send the header (the lb role's C(switchyard_canary_trusted_sources)).
    type: str
    choices: [blue, green]
  require_idle:
    description:
      - Fail unless this color has weight 0 and no current sessions on every route, afterwards (a contract stops
        the old color only then).
    type: str
    choices: [blue, green]
  idle_seconds:
    description:
      - With O(require_idle), also wait until the LB's request log shows no request answered by that color on any
        route over the last O(idle_seconds) seconds (up to O(idle_timeout)), and fail otherwise - what the LB served
        confirms the color idle before it is stopped. 0 does not read the log. Not in check mode.
    type: int
    default: 0
  idle_timeout:
    description: Seconds to wait for O(idle_seconds) without a request before failing.
    type: int
    default: 60
  maintenance:
    description:
      - The maintenance page of every route (a recreate's planned outage) - on, every request of the route (the header
        canary's too) answers HTTP 503 with C(Retry-After), the header C(X-Switchyard-Maintenance) set to C(on) and
        the page the lb role deployed (C(switchyard_maintenance_body)); off, the colors' weights and states answer
        again.
      - Turned on before O(weights) and O(states) move, off after them. Each kind applies it as it applies a weight
        change (HAProxy - a map through the Runtime API, no reload; Nginx - routes.conf and a verified reload; Traefik
        - a middleware in the route's file, read back from its API), persisted so a restart of the LB keeps it.
      - Then checked live - each of O(maintenance.probe_urls) asked through the LB must answer the page (on), or
        anything but the page and a 5xx (off); the module fails otherwise. Not in check mode.
    type: dict
    suboptions:
      enabled:
        description: V(true) turns the page on, V(false) off.
        type: bool
        required: true
      wait_up:
        description:
          - With O(maintenance.enabled=false) - wait until this color is UP on every route (up to O(up_timeout))
            before the page goes; the page stays on when it is not.
        type: str
        choices: [blue, green]
      probe_urls:
        description: URLs of the LB (one per route, from the Docker host) the live check asks.
        type: list
        elements: str
        default: []
      probe_timeout:
        description: Seconds each URL may take to answer as expected.
        type: float
        default: 10
      since:
        description:
          - With O(maintenance.enabled=false) - when the page was verified on (the C(maintenance.verified_at) the
            module returned then, epoch seconds); the result's C(maintenance.outage_ms) is the time between.
        type: float
  best_effort:
    description:
      - V(false) - every route is read and planned before the first command is sent, so a refusal changes nothing.
      - V(true) (the emergency paths - putting traffic back after a failure) - each route is moved as far as it
        goes, and the failures are reported together at the end; the result says which routes moved.
    type: bool
    default: false
  record:
    description: Record the result in the release ledger of O(app) (under O(path)).
    type: dict
    suboptions:
      release_id:
        description: The release the record belongs to.
        type: str
        required: true
      action:
        description:
          - V(step) records O(record.step) with the weights observed (and renews the lock of O(lease)).
          - V(promote), V(rollback) and V(fail) end the release with the weights observed and release its lock
            (as M(switchyard.release.release_state) does).
        type: str
        choices: [step, promote, rollback, fail]
        default: step
      step:
        description: With V(step) - the step (C(name) and any other keys), as release_state takes it.
        type: dict
      color:
        description: With V(promote) and V(rollback) - the color that holds the traffic afterwards.
        type: str
        choices: [blue, green]
      reason:
        description: With V(rollback) and V(fail) - why.
        type: str
"""

EXAMPLES = r"""
- name: A canary step of 10 %, recorded in the ledger
  switchyard.release.traffic:
    app: shop
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    weights: {blue: 230, green: 26}
    states: {green: ready}
    up_timeout: 180
    lease: {app: shop, token: "{{ locked.lock_token }}", ttl: 900}
    record:
      release_id: "{{ release_id }}"
      step: {name: canary-10}

- name: Read where the traffic goes
  switchyard.release.traffic:
    app: shop
    lb: {dir: /var/lib/switchyard/shop/lb}
    routes: [api, web]
  register: traffic
"""

RETURN = r"""
routes:
  description: Per route - route, changed, before and after (color to weight, state, up, status, sessions), shares
    (percent of new traffic per color), commands sent.
  returned: always
  type: list
  elements: dict
servers:
  description: Route to color to the servers as the LB shows them afterwards.
  returned: always
  type: dict
weights:
  description:
    - Color to weight, as the LB shows them afterwards - the routes' weights, and where routes differ (a change
      that failed on a route), each color's highest weight on any route.
  returned: always
  type: dict
  sample: {blue: 230, green: 26}
idle:
  description: With O(idle_seconds), the color and the span over which the LB's request log showed it no request.
  returned: with require_idle and idle_seconds, not in check mode
  type: dict
  sample: {color: blue, seconds: 5, quiet_since: "2026-12-04T05:20:01+00:00"}
reached:
  description: Whether the LB shows the weights and states asked on every route, read back after the change (true
    when only reading).
  returned: always
  type: bool
canary:
  description:
    - With O(canary) - C(changed), C(before) (the color C(X-Canary) C(1) reached, null when it had none),
      C(after), C(file_before) (what the canary map file said) and the C(commands) sent (would be sent, in check mode).
  returned: with canary
  type: dict
  sample:
    changed: true
    before: green
    after: blue
    file_before: green
    commands: ["set map /usr/local/etc/haproxy/canary.map 1 blue"]
maintenance:
  description:
    - With O(maintenance) - C(enabled), C(changed), C(routes) (per route - C(route), C(changed), C(before), C(after),
      C(commands)), C(probes) (per URL - C(status), C(page), C(retry_after), C(at), C(tries)), C(verified_at) (epoch
      seconds, when the last URL answered as expected), C(waited_up_s) and, with O(maintenance.since), C(outage_ms).
  returned: with maintenance
  type: dict
  sample:
    enabled: false
    changed: true
    routes: [{route: api, changed: true, before: true, after: false, commands: ["set map maintenance.map api off"]}]
    probes: [{url: "http://127.0.0.1:8080/", status: 200, page: false, at: 1796400000.5, tries: 1}]
    verified_at: 1796400000.5
    waited_up_s: 1.2
    outage_ms: 9350.4
kind:
  description: The LB kind.
  returned: always
  type: str
ledger:
  description: The ledger after the record.
  returned: with record, not in check mode
  type: dict
release:
  description: The ledger's entry of O(record.release_id) after the record.
  returned: with record, not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.traffic import Traffic, traffic_argument_spec

ARGUMENT_SPEC = traffic_argument_spec()


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, Traffic)


if __name__ == "__main__":
    main()
