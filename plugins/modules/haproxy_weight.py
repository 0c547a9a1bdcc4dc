#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_weight
short_description: Read, set and persist HAProxy server weights and states through the Runtime API
version_added: 0.1.0
description:
  - Shifts traffic between the servers of one HAProxy backend (the blue and green colors of a service)
    through the Runtime API on an admin-level stats socket, without a reload, so no request is dropped
    and the statistics counters the canary gate reads are kept.
  - Reads first (C(show servers state), C(show stat)) and compares the user weight and the admin state
    (never the current sessions); does nothing when they already match.
  - Applies in an order that never leaves the backend without capacity - servers leaving maint or drain
    first (waiting until they are UP), then weights raised, then weights lowered (in one session), then
    drain (waiting for sessions to end up to O(drain_timeout)) and maint. Reads back and fails if HAProxy
    reports anything else.
  - Refuses, before any change, a weight outside 0..256, an unknown backend or server, weight for a
    server that is not UP (O(require_up)), a change that leaves the backend with zero total weight on its
    UP servers, and a socket without admin level.
  - With O(persist), writes the same weights into the configuration file (rewriting the C(server) lines,
    validated with O(validate_command), renamed into place inside the mounted directory) and dumps
    C(show servers state) to the server-state file, so a reload keeps them.
  - With O(reload=fallback), when the socket is unreachable, writes the weights into the validated configuration
    and the admin states (maint, drain) into the server-state file, runs O(reload_command) and verifies weights
    and states afterwards through O(verify_socket) (the master CLI) or O(socket). When O(verify_socket) answers,
    the current state is read there first, and nothing is reloaded if HAProxy already shows the target.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.lease
attributes:
  check_mode:
    description: All reads, no writes; the result and the diff say what would change.
    support: full
  diff_mode:
    description: Weights and states per server, and the configuration file, before and after.
    support: full
options:
  socket:
    description: The stats socket - an absolute unix socket path, or C(tcp://HOST:PORT).
    type: str
    required: true
  backend:
    description:
      - The backend whose servers change, for example C(be_api).
      - Like the server names of O(weights) and O(states), an HAProxy name - 1 to 128 of the characters
        C([A-Za-z0-9_.:-]); anything else (a C(;) that would start a second Runtime API command, a newline) is
        refused before anything is sent.
    type: str
    required: true
  weights:
    description:
      - Server name to weight, 0 to 256.
      - Absolute values; HAProxy's percentages are relative to the configured weight.
    type: dict
    default: {}
  states:
    description:
      - Server name to admin state - V(ready), V(drain) (no new traffic, persistent sessions still
        admitted) or V(maint) (no traffic at all).
    type: dict
    default: {}
  require_up:
    description: Refuse to give weight to a server whose health checks do not report it UP.
    type: bool
    default: true
  up_timeout:
    description: Seconds to wait for a server leaving maint or drain to come UP before its weight is raised.
    type: int
    default: 30
  drain_timeout:
    description: Seconds to wait, after setting V(drain), until the server's current sessions reach 0 (0 does not wait).
    type: int
    default: 0
  maint_after_drain:
    description: Put the servers asked to V(drain) in V(maint) once drained (or once O(drain_timeout) ran out).
    type: bool
    default: false
  persist:
    description: Where to keep the change so that a reload does not undo it.
    type: dict
    suboptions:
      config:
        description: The HAProxy configuration file on the target (in a mounted directory).
        type: path
      state_file:
        description: The C(server-state-file) the configuration loads at start.
        type: path
  validate_command:
    description:
      - Command that validates a configuration before it replaces the current one, as a list.
        C({path}) is replaced by the candidate file's path, C({name}) by its file name (for a path inside a container).
    type: list
    elements: str
  reload:
    description:
      - V(never) fails when the socket is unreachable.
      - V(fallback) reloads HAProxy with the persisted configuration when the socket is unreachable, and verifies.
      - V(always) reloads after the change (for a new configuration, as the lb role does) and verifies that a
        new worker answers with the weights asked for. Not for weight changes, which never need a reload.
    type: str
    choices: [never, fallback, always]
    default: never
  reload_command:
    description:
      - Command that reloads the HAProxy master, as a list, for example C(docker kill --signal USR2 shop-lb-haproxy-1).
    type: list
    elements: str
  verify_socket:
    description: A second socket to verify the weights after a fallback reload, for example the master CLI.
    type: str
  verify_prefix:
    description:
      - Prefix for commands on O(verify_socket), for example C(@1 ) to reach worker 1 through the master CLI.
      - Empty, C(@<n> ), C(@!<pid> ) or C(@master ); nothing else is sent.
    type: str
    default: ""
  timeout:
    description: Seconds for each exchange on the socket.
    type: int
    default: 5
notes:
  - Weight 0 and V(drain) still admit cookie-pinned and C(use-server) (X-Canary) requests; only V(maint) stops them.
"""

EXAMPLES = r"""
- name: Send 10 % of new traffic to green
  switchyard.release.haproxy_weight:
    socket: /var/lib/switchyard/shop/lb/run/admin.sock
    backend: be_api
    weights: {api_blue: 230, api_green: 26}
    persist:
      config: /var/lib/switchyard/shop/lb/etc/haproxy.cfg
      state_file: /var/lib/switchyard/shop/lb/state/servers.state
    validate_command: [docker, exec, shop-lb-haproxy-1, haproxy, -c, -f, "/usr/local/etc/haproxy/{name}"]
  register: shift

- name: Roll back - everything to blue, green in maint
  switchyard.release.haproxy_weight:
    socket: /var/lib/switchyard/shop/lb/run/admin.sock
    backend: be_api
    weights: {api_blue: 256, api_green: 0}
    states: {api_green: maint}

- name: Drain blue, then maint
  switchyard.release.haproxy_weight:
    socket: /var/lib/switchyard/shop/lb/run/admin.sock
    backend: be_api
    states: {api_blue: drain}
    drain_timeout: 60
    maint_after_drain: true
"""

RETURN = r"""
backend:
  description: The backend.
  returned: always
  type: str
before:
  description: Per server before the change - weight, state, status, up, sessions.
  returned: when the backend could be read
  type: dict
after:
  description: Per server after the change (the plan, in check mode).
  returned: success
  type: dict
shares:
  description: Percent of new traffic per server (weight over the total of ready, UP servers).
  returned: success
  type: dict
  sample: {api_blue: 90.0, api_green: 10.0}
method:
  description: V(runtime) (Runtime API) or V(reload) (fallback).
  returned: always
  type: str
persisted:
  description: Whether the configuration or the state file was rewritten.
  returned: always
  type: bool
commands:
  description: The Runtime API commands sent (would be sent, in check mode), in order.
  returned: always
  type: list
  elements: str
snapshot:
  description: The weights and states before the change - enough to restore them in one call.
  returned: when the backend could be read
  type: dict
drain:
  description: How long the drain waited and the sessions left.
  returned: when servers were drained with drain_timeout
  type: dict
timings:
  description:
    - Milliseconds spent on the Runtime API (apply and read back, C(runtime_ms)) and on persisting (C(persist_ms)).
  returned: when weights or states were applied through the socket
  type: dict
haproxy_version:
  description: The HAProxy version behind the socket.
  returned: when the socket answered
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.weights import HAProxyWeightManager
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec

ARGUMENT_SPEC = {
    "socket": {"type": "str", "required": True},
    "backend": {"type": "str", "required": True},
    "weights": {"type": "dict", "default": {}},
    "states": {"type": "dict", "default": {}},
    "require_up": {"type": "bool", "default": True},
    "up_timeout": {"type": "int", "default": 30},
    "drain_timeout": {"type": "int", "default": 0},
    "maint_after_drain": {"type": "bool", "default": False},
    "persist": {
        "type": "dict",
        "options": {"config": {"type": "path"}, "state_file": {"type": "path"}},
    },
    "validate_command": {"type": "list", "elements": "str"},
    "reload": {"type": "str", "choices": ["never", "fallback", "always"], "default": "never"},
    "reload_command": {"type": "list", "elements": "str"},
    "verify_socket": {"type": "str"},
    "verify_prefix": {"type": "str", "default": ""},
    "timeout": {"type": "int", "default": 5},
    **lease_argument_spec(),
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, HAProxyWeightManager)


if __name__ == "__main__":
    main()
