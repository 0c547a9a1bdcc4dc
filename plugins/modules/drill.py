#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: drill
short_description: Rehearse a rollback - a share of new traffic to the previous color and back, timed
version_added: 0.1.0
description:
  - Plans by the rollback's own rules (the color a rollback would go back to now, refused where a rollback is
    refused, never forced) and checks that color warm - its containers running and healthy with the digests the
    ledger recorded for it, and on the LB UP (or in maint, lifted as a rollback would). A refusal changes nothing.
  - Then, under the release lock (the caller's O(lease), or a lock of its own), moves O(percent) % of new traffic
    (all of it with O(full)) to that color on every route, holds it for O(hold_seconds), and puts every route back
    to exactly the weights and states the LB showed before.
  - Measures the RTO with probes through the LB's public address (O(probe)), each numbered in its query; the
    LB's own request log says which color served each one, whatever the LB kind. Full drill - from the shift call
    until every new probe is served by the target; partial drill - until the first probe the target serves. It
    also times the way back, and counts the requests the LB logged as failed (5xx or no answer) over the drill.
  - Refused too when the LB does not show what the ledger says (on every route the live color ready at weight 256,
    the target taking no new traffic) - a drill or release was interrupted there.
  - Before the shift the drill is recorded C(running) with the weights and states to put back (C(restore_to)). The
    target DOWN on the LB, failing probes, or the lock taken over end the hold at once; any failure after the shift,
    and SIGTERM, SIGHUP or SIGINT, put the traffic back where it was before anything else - unless another run took
    the release lock over (a forced rollback), whose traffic is left alone. A drill killed outright leaves its
    C(running) record; the next drill (or O(recover)) puts that traffic back first.
  - The outcome is V(done) only when the target took its share (the RTO reached, probes served) and the LB logged
    no failed request; otherwise V(failed) with the reason. The drill is recorded in the ledger's C(drills)
    (release_state action V(drill)) and the lock released with it - except when the traffic could not be put back
    (the lock is kept, the record keeps C(restore_to) and C(restored=false)).
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.lb
  - switchyard.release.lease
  - switchyard.release.state
attributes:
  check_mode:
    description: Plans, checks the target warm, says which commands the shift would send; moves no traffic, sends
      no probe, takes no lock and records nothing.
  diff_mode:
    description: Not reported; the result's before, routes and restore say what moved and back.
    support: none
options:
  percent:
    description: The share of new traffic moved to the target, 1 to 99 (ignored with O(full)).
    type: int
    default: 10
  full:
    description: Move all new traffic (the live color at weight 0, still ready), as a rollback would.
    type: bool
    default: false
  hold_seconds:
    description: Seconds the target keeps its share before everything goes back.
    type: int
    default: 10
  measure_seconds:
    description:
      - Seconds of fast probing after the shift call returned, within the hold (the RTO is measured from the call to
        the end of them); 4 probes a second after.
    type: float
    default: 3
  settle_seconds:
    description: Seconds of fast probing after the traffic went back (the way back is timed within them).
    type: float
    default: 1
  log_wait:
    description: Seconds to wait for the LB's request log to show the last probe.
    type: float
    default: 5
  up_timeout:
    description: Seconds a color leaving maint or drain may take to be UP.
    type: int
    default: 30
  probe:
    description: The probes, sent through the LB's public address.
    type: dict
    required: true
    suboptions:
      url:
        description: The LB's public address, such as V(http://127.0.0.1:8080).
        type: str
        required: true
      path:
        description: The path probed (its route is the one timed); any answer below 500 is served.
        type: str
        default: /
      rate:
        description:
          - Probes per second while the traffic moves (one at a time over a kept-alive connection; 4 a second while
            it holds). The resolution of the RTO; for a partial drill, the first probe the target serves comes after
            about 100 / O(percent) probes.
        type: float
        default: 200
      timeout:
        description: Seconds a probe waits for its answer.
        type: float
        default: 2
  docker_cli:
    description: The docker CLI, to check the target's containers.
    type: path
    default: docker
  owner:
    description:
      - Who holds the lock (when the module takes it) and ran the drill. Defaults to C(<login user>@<hostname>).
    type: str
  lock_ttl:
    description: Seconds the lock the module takes (without O(lease)) stays valid between renewals.
    type: int
    default: 900
  release_id:
    description: The drill's id in the ledger (the one the caller locked with). Defaults to the lease's, or a new id.
    type: str
  after_rollback:
    description:
      - Drill to the previous color even when a rollback took the traffic away from it (or its release failed or was
        rolled back) - by default refused, a drill would send users back to the version an incident took out.
    type: bool
    default: false
  recover:
    description:
      - Only put back the traffic the last drill left moved (killed, or its restore failed), from its C(restore_to),
        and record it; nothing when there is none, or when a release or rollback ran since. Needs O(lease) (the run's
        own lock - a run that took it over is never undone). What the drill role's rescue runs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Rehearse a rollback of shop with 10 % of new traffic for 10 s
  switchyard.release.drill:
    app: shop
    lb: {kind: haproxy, dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    percent: 10
    hold_seconds: 10
    probe: {url: "http://127.0.0.1:8080", path: /health}
  register: drilled

- name: The full drill - all new traffic to the previous color, under this run's lock
  switchyard.release.drill:
    app: shop
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    full: true
    probe: {url: "http://127.0.0.1:8080"}
    lease: {app: shop, token: "{{ locked.lock_token }}", release_id: "{{ plan.id }}"}
"""

RETURN = r"""
plan:
  description: The drill's plan - id, live, to, from, full, percent, version, images, weights, rollback_mode, refused.
  returned: always
  type: dict
before:
  description: Route to color to the servers as the LB showed them before anything moved (what the restore brings back).
  returned: when the plan was not refused
  type: dict
warm:
  description: The target color and why it is not warm (problems, empty when it is).
  returned: when the plan was not refused
  type: dict
restore_to:
  description: Route to the weights and states the restore brings back (the LB's, before anything moved).
  returned: when the plan was not refused
  type: dict
  sample: {api: {weights: {blue: 0, green: 256}, states: {blue: drain, green: ready}}}
summary:
  description: One sentence - what the drill would do (check mode) or did, with its RTO and failed requests.
  returned: when the plan was not refused
  type: str
routes:
  description: Per route, the shift to the target - before, after, shares, commands (would be sent, in check mode).
  returned: when the traffic was moved, and in check mode
  type: list
  elements: dict
interrupted:
  description: The interrupted drill found in the ledger (id, superseded - why its traffic is not put back, or null).
  returned: when the last drill left traffic to put back
  type: dict
put_back:
  description: The interrupted drill's record once its traffic was put back (outcome failed, restored).
  returned: when an interrupted drill's traffic was put back
  type: dict
restore:
  description: Per route, the way back - before, after, commands; failed and msg for a route that did not go back.
  returned: when the drill ran
  type: list
  elements: dict
weights_after:
  description: Color to weight as the LB shows them after the restore.
  returned: when the drill ran
  type: dict
figures:
  description:
    - rto_ms and back_ms (null when not reached), observed_percent (of the probes during the hold the target
      served, of those the LB's log shows), failed (real, probes, total - requests the LB logged with a 5xx or
      no answer), probes (sent, answered, failed, unlogged), log_dropped (HAProxy - the log lines it dropped
      during the drill, when it could not write its stdout in time).
  returned: when the drill ran
  type: dict
drill:
  description: The drill's record, as the ledger keeps it (outcome planned in check mode).
  returned: when the plan was not refused
  type: dict
  sample: {id: 20261204T051000Z-drill-1a2b, to: blue, from: green, percent: 10, full: false, rto_ms: 42.5,
           back_ms: 12.0, failed_requests: 0, outcome: done, reason: null}
ledger:
  description: The ledger after the record.
  returned: when the drill ran
  type: dict
kind:
  description: The LB kind.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.drill.manager import DrillManager
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

ARGUMENT_SPEC = {
    **state_argument_spec(),
    **lb_argument_spec(),
    **lease_argument_spec(),
    "percent": {"type": "int", "default": 10},
    "full": {"type": "bool", "default": False},
    "hold_seconds": {"type": "int", "default": 10},
    "measure_seconds": {"type": "float", "default": 3},
    "settle_seconds": {"type": "float", "default": 1},
    "log_wait": {"type": "float", "default": 5},
    "up_timeout": {"type": "int", "default": 30},
    "probe": {
        "type": "dict",
        "required": True,
        "options": {
            "url": {"type": "str", "required": True},
            "path": {"type": "str", "default": "/"},
            "rate": {"type": "float", "default": 200},
            "timeout": {"type": "float", "default": 2},
        },
    },
    "docker_cli": {"type": "path", "default": "docker"},
    "owner": {"type": "str"},
    "lock_ttl": {"type": "int", "default": 900},
    "release_id": {"type": "str"},
    "after_rollback": {"type": "bool", "default": False},
    "recover": {"type": "bool", "default": False},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, DrillManager)


if __name__ == "__main__":
    main()
