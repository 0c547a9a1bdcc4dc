# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/lb/kinds.py: lb_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  lb:
    description:
      - The application's load balancer, as the C(lb) role runs it.
      - The modules speak of routes and colors; the LB kind maps them to its own names (for HAProxy, backend
        C(be_<route>) and servers C(<route>_<color>)).
    type: dict
    required: true
    suboptions:
      kind:
        description:
          - The kind of load balancer (the lb role's C(switchyard_lb_kind)).
          - V(haproxy) changes weights through the Runtime API; V(nginx) rewrites its upstream file, validates it
            with C(nginx -t) and reloads gracefully; V(traefik) rewrites a file its file provider watches and reads
            the result back from its API.
        type: str
        choices: [haproxy, nginx, traefik]
        default: haproxy
      dir:
        description:
          - The LB's host directory. For HAProxy - C(etc/haproxy.cfg), C(run/admin.sock) (the admin-level Runtime
            API) and C(state/servers.state).
        type: path
        required: true
      container:
        description:
          - The LB's container, in which a new configuration is validated before it replaces the old one
            (C(haproxy -c)); without it, changes are persisted unvalidated.
        type: str
      timeout:
        description: Seconds to wait for the LB's control socket.
        type: float
        default: 5
  routes:
    description:
      - The routed services of the application (C(switchyard_lb_routes) names); every one is changed.
      - Each a name the LB takes (for HAProxy 1 to 128 of the characters C([A-Za-z0-9_.:-])), checked before
        any lock, ledger or LB is touched.
    type: list
    elements: str
    required: true
"""
