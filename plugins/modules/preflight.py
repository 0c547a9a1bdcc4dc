#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check a Docker host before a release, each check named, in one call
version_added: 0.1.0
description:
  - Measures the Docker host - the Engine's version and data directory (C(docker info)), the Compose v2 plugin's
    version, the free space under the data directory (bytes and percent), the host's clock against the controller's
    - and, when the application's LB runs, reads the servers of every route through the LB interface.
  - Each check has a name (C(docker), C(compose), C(free_space), C(clock), C(lb)), a status (pass, fail, skip), the
    value measured and the limit. The task fails, naming every failed check, before a release changes anything.
  - Changes nothing, in check mode too.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.lb
attributes:
  check_mode:
    description: Measures and judges as in a run; it never changes anything.
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
options:
  docker_cli:
    description: The docker client.
    type: path
    default: docker
  min_docker_version:
    description: The oldest Docker Engine accepted.
    type: str
    default: "20.10"
  min_compose_version:
    description: The oldest Compose plugin accepted (v2).
    type: str
    default: "2.0.0"
  min_free_gb:
    description: Free space needed under Docker's data directory, in GB.
    type: float
    default: 2
  controller_time:
    description: The controller's clock (seconds since the epoch) when the task was sent; without it, no clock check.
    type: float
  max_clock_skew:
    description: Largest difference between the host's clock and O(controller_time), in seconds.
    type: float
    default: 5
  lb:
    description: The application's LB; its servers are read when it exists. Without it, the LB is not checked.
    required: false
  routes:
    description: The routes whose servers are read on the LB.
    required: false
    default: []
"""

EXAMPLES = r"""
- name: Check the Docker host
  switchyard.release.preflight:
    min_free_gb: 2
    controller_time: "{{ now(utc=true).timestamp() }}"
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
  register: preflight
"""

RETURN = r"""
checks:
  description: Every check - name, status (pass, fail, skip), value, limit, message.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: free_space, status: pass, value: {bytes: 85899345920, gb: 80.0, percent: 32.0}, limit: 2.0,
       message: "80.0 GB (32 %) free under /var/lib/docker"}
passed:
  description: The names of the checks that passed.
  returned: success
  type: list
  elements: str
facts:
  description: What was measured - docker_version, compose_version, docker_root, free_bytes, total_bytes, clock_skew_s.
  returned: always
  type: dict
lb_servers:
  description: Route to color to the servers the LB shows ({} without an LB).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.host.preflight import PreflightManager
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec

ARGUMENT_SPEC = {
    "docker_cli": {"type": "path", "default": "docker"},
    "min_docker_version": {"type": "str", "default": "20.10"},
    "min_compose_version": {"type": "str", "default": "2.0.0"},
    "min_free_gb": {"type": "float", "default": 2},
    "controller_time": {"type": "float"},
    "max_clock_skew": {"type": "float", "default": 5},
    # The LB is optional here: a host is checked before its first release too.
    "lb": {**lb_argument_spec()["lb"], "required": False},
    "routes": {**lb_argument_spec()["routes"], "required": False, "default": []},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, PreflightManager)


if __name__ == "__main__":
    main()
