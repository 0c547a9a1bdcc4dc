#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_gate
short_description: One canary verdict over the hosts of a fleet - their requests pooled, each host's own verdict kept
version_added: 0.1.0
description:
  - Judges the canary of several Docker hosts that move through the same canary step together from each host's
    M(switchyard.release.canary_gate) result - run it on the controller (C(delegate_to) V(localhost), C(run_once)) after
    every host of the batch has run its gate.
  - The pooled judgement - per route, the canary's requests of every observed host against the baseline's of every
    observed host (each gate's RV(switchyard.release.canary_gate#module:pool)), judged with the same thresholds and
    tests as one gate - so hosts too quiet to be judged alone are judged together.
  - Each host's own verdict - a host whose gate says V(rollback) rolls the fleet back, named in RV(reason) (a bad host
    is diluted in a pool). A host's V(hold) counts as its pool's C(own_verdict) - lifted when the host held only for
    too little traffic (the pool judges that traffic), a V(hold) naming the host otherwise (an LB not observed, a
    reload, a container still starting, a Prometheus query without data).
  - The verdict is the worst of the pooled judgement and the hosts' (V(rollback) over V(hold) over V(promote)).
  - Fails closed - a host of O(hosts) without an observation, whose gate was skipped or failed before a verdict, or
    whose last window was discarded, is not observed - the fleet holds, naming it in RV(unobserved) (a pool without it
    is not the fleet's traffic). A value that is not a canary_gate result fails the task, naming
    C(observations.<host>), before anything is judged.
  - It only computes - check mode judges as well, and the task never reports a change.
author:
  - Switchyard developers (@switchyard)
requirements:
  - scipy on the controller.
extends_documentation_fragment:
  - switchyard.release.gate_limits
attributes:
  check_mode:
    description: Judges; nothing is changed in either mode.
    support: full
  diff_mode:
    description: Nothing to compare.
    support: none
options:
  observations:
    description:
      - Each host's registered M(switchyard.release.canary_gate) result, by host - C(verdict), C(reason), C(metrics),
        C(figures), C(pool), C(unobserved) and C(counter_resets) are read; the rest is ignored. A failed result that has
        a verdict (C(fail_on=rollback)) counts with it; C(skipped), or failed without a verdict, is not observed.
      - Give the same thresholds as the hosts' gates; the pool is judged with them.
    type: dict
    required: true
  hosts:
    description:
      - The hosts of the batch (C(ansible_play_batch)); a host without an observation is not observed (the fleet holds).
        Defaults to the hosts of O(observations). A host of O(observations) that is not one of them is an error.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Observe the candidate on each host of the batch
  switchyard.release.canary_gate:
    baseline: blue
    canary: green
    window: 60
    sources:
      lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1, routes: [api, web]}
    fail_on: never
  register: gate

- name: Judge the fleet - the hosts' requests pooled, each host's own verdict kept
  switchyard.release.fleet_gate:
    hosts: "{{ ansible_play_batch }}"
    observations: >-
      {{ dict(ansible_play_batch | zip(ansible_play_batch | map('extract', hostvars, 'gate') | list)) }}
    max_p95_ms: 500
  delegate_to: localhost
  run_once: true
  register: fleet
"""

RETURN = r"""
verdict:
  description: V(promote), V(hold) or V(rollback) - the worst of the pooled judgement and each host's.
  returned: always
  type: str
reason:
  description: Why - every metric that did not pass (failed first), each naming its host or its route.
  returned: always
  type: str
  sample: "host web2: rollback - route api: error_rate: canary error rate 19.80% (40/202) above the limit 1.00%"
metrics:
  description:
    - The metrics of the fleet's verdict, in the shape of canary_gate's (metric, status, reason, and route when it
      belongs to one) - the pooled metrics (canary_gate's traffic metrics over every observed host's requests, with
      C(hosts) - how many were pooled), C(host) (a host's own rollback - V(fail) - or hold that the pool does not
      lift - V(inconclusive) - with C(host)), and C(observation) (V(inconclusive) - a host, or a route of a host, not
      observed - with C(host) and C(unobserved)).
  returned: always
  type: list
  elements: dict
figures:
  description:
    - Per side (C(baseline), C(canary)) the pooled figures summed over the routes - C(name) (the hosts' colors),
      C(requests), C(errors), C(error_rate), C(p50_ms), C(p95_ms), C(p99_ms) (over every host's latencies),
      C(throughput_rps) (the hosts' added) and, when every log told them apart, C(real_requests) and
      C(synthetic_requests).
  returned: always
  type: dict
routes:
  description:
    - Per route of the hosts' O(switchyard.release.canary_gate#module:sources.lb) - route, verdict and reason of its
      pooled metrics, not_passed, and figures (per side, as RV(figures)).
  returned: when the hosts' gates judged routes of the LB
  type: list
  elements: dict
hosts:
  description: Each host's own verdict (null for a host not observed).
  returned: always
  type: dict
  sample: {web1: promote, web2: rollback, web3: null}
evidence:
  description:
    - What a ledger keeps, in the shape of canary_gate's RV(switchyard.release.canary_gate#module:evidence) (verdict,
      reason, window, routes, metrics, figures, route_figures, measurements - one, the pooled one) plus C(hosts) - per
      host its C(verdict), C(reason), C(counted_as) (what it weighed in the fleet's verdict - its rollback, or its
      pool's own verdict; V(hold) when not observed) and C(figures) (its gate's figures, per side).
  returned: always
  type: dict
window:
  description: The earliest start and the latest end of the hosts' last measurements (UTC, ISO 8601).
  returned: always
  type: dict
unobserved:
  description:
    - Why hosts (or routes of hosts) were not observed, and the hosts' own unobserved windows, each naming its host.
      A hold with any is one nothing was seen for - the canary role never promotes it by policy.
  returned: always
  type: list
  elements: str
counter_resets:
  description: The hosts' discarded windows (a reload reset the counters), each naming its host.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.canary.fleet import FleetGate
from ansible_collections.switchyard.release.plugins.module_utils.canary.judge import limits_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module

ARGUMENT_SPEC = {
    "observations": {"type": "dict", "required": True},
    "hosts": {"type": "list", "elements": "str"},
    **limits_argument_spec(),
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, FleetGate)


if __name__ == "__main__":
    main()
