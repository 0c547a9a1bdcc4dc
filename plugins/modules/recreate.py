#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: recreate
short_description: Replace a color in place behind the maintenance page, in one call
version_added: 0.5.0
description:
  - The outage of C(switchyard_strategy=recreate) - planned maintenance without a second color - in one process, each
    step only once the one before succeeded.
  - First the project rendered from the files staged in O(staged_dir), its images pinned and found on the host
    (nothing has changed yet, the old version serves).
  - Then the maintenance page on every route, checked through the LB (O(maintenance.probe_urls)), and with O(record)
    the stop step written to the release ledger.
  - Then the old version stopped, the staged files put in place, the new version up and healthy (within
    O(wait_timeout)).
  - With O(resume), the page off once the LB sees O(color) UP on every route (within O(up_timeout)), checked through
    the LB; RV(outage_ms) is the time from the page checked on to the new version checked answering.
  - The page's calls are those of M(switchyard.release.traffic) (O(switchyard.release.traffic#module:maintenance)), the
    project's those of M(switchyard.release.compose_project) with
    O(switchyard.release.compose_project#module:stop_first) and O(switchyard.release.compose_project#module:staged_dir),
    run one after the other in this module - not three module starts inside the outage.
  - A failure says where it left things - RV(touched) (whether the old version was stopped or its files replaced) and
    RV(page) - and does not undo it itself; the release role's rescue turns the page off again over an untouched old
    version, and keeps it on over a stopped one.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.compose
  - switchyard.release.lb
  - switchyard.release.lease
  - switchyard.release.state
attributes:
  check_mode:
    description:
      - Plans the project against its own files (the staged ones are not moved), reads the page of every route, changes
        nothing and records nothing.
  diff_mode:
    description: The project's services before and after, and each route's page.
options:
  color:
    description: The color recreated - the live color, whose project is O(project); the page goes off once it is UP.
    type: str
    required: true
    choices: [blue, green]
  images:
    description: Service name to image reference, as M(switchyard.release.compose_project)'s O(images).
    type: dict
    default: {}
  images_only:
    description: Refuse a service of the project that O(images) does not list, before anything changes.
    type: bool
    default: false
  staged_dir:
    description:
      - The directory where every file of O(files) and O(env_files) was laid out beforehand, by name, on the same
        filesystem (the release role's stack stage does it while the old version serves). A staged file missing is
        refused before the page goes on.
    type: path
    required: true
  maintenance:
    description: How the page is checked through the LB, on and off.
    type: dict
    default: {}
    suboptions:
      probe_urls:
        description: URLs of the LB (one per route, from the Docker host) that answer the page, then the application.
        type: list
        elements: str
        default: []
      probe_timeout:
        description: Seconds each URL may take to answer as expected.
        type: float
        default: 10
  up_timeout:
    description: Seconds the LB may take to see O(color) UP on every route once healthy; the page stays on otherwise.
    type: int
    default: 30
  resume:
    description:
      - V(true) - the page goes off at the end. V(false) - it stays on for the caller, which turns it off with
        M(switchyard.release.traffic) (a backfill must run before the new version gets traffic), passing
        the C(verified_at) of RV(page_on) as O(switchyard.release.traffic#module:maintenance.since).
    type: bool
    default: true
  record:
    description:
      - The stop step written to the release ledger once the page is checked on, before anything stops (needs
        O(lease)).
    type: dict
    suboptions:
      release_id:
        description: The release the step belongs to.
        type: str
        required: true
      step:
        description: The step (C(name), and what it says - C(deploying), C(replaced)).
        type: dict
        required: true
notes:
  - O(lease) is checked before the page goes on and before each change after it; a run that lost its lock changes
    nothing more.
"""

EXAMPLES = r"""
- name: Recreate blue with the staged version, behind the maintenance page
  switchyard.release.recreate:
    app: shop
    lb:
      kind: haproxy
      dir: /var/lib/switchyard/shop/lb
      container: shop-lb-haproxy-1
    routes: [api]
    project: shop-blue
    files: [/srv/shop/blue/compose.yaml, /srv/shop/blue/color.override.yaml]
    env_files: [/srv/shop/blue/color.env]
    staged_dir: /srv/shop/blue.staged
    images:
      web: registry.example.com/shop/web@sha256:6f1c0ad5e3d5b2f0a4e1d1c0b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1
    color: blue
    maintenance:
      probe_urls: ["http://127.0.0.1:8080/"]
  register: recreated

- name: Say how long the page was up
  ansible.builtin.debug:
    msg: "{{ recreated.outage_ms }} ms, of which {{ recreated.ready_s }} s for the new version to be healthy"
"""

RETURN = r"""
touched:
  description: Whether the old version was touched - stopped, its files replaced, or C(up) begun. On failure too.
  returned: always
  type: bool
page:
  description:
    - Where the page is - V(off) (never put on, or check mode), V(on) (on, or may be - left on by a failure once it
      began to go on, or by O(resume=false); a failure while it went on or off may leave it on only on some routes),
      V(resumed) (off again over the new version). On failure too.
  returned: always
  type: str
page_on:
  description: M(switchyard.release.traffic)'s C(maintenance) result of the page going on (C(verified_at) among it).
  returned: once the page went on
  type: dict
page_off:
  description: M(switchyard.release.traffic)'s C(maintenance) result of the page going off (C(outage_ms) among it).
  returned: with O(resume), once the page went off
  type: dict
outage_ms:
  description: From the page checked on to the new version checked answering, through the LB.
  returned: with O(resume), once the page went off (not in check mode)
  type: float
stopped_s:
  description: Seconds the old version took to stop.
  returned: when containers were stopped
  type: float
ready_s:
  description: Seconds from C(up) until the new version was healthy - its health time.
  returned: when the new version was started
  type: float
images:
  description: Service to the digest-pinned reference it runs.
  returned: always
  type: dict
project:
  description: M(switchyard.release.compose_project)'s result for the project (C(actions), C(services), C(staged)...).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.compose.options import project_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.recreate import Recreate
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

ARGUMENT_SPEC = {
    **project_argument_spec(),
    **state_argument_spec(),
    **lb_argument_spec(),
    **lease_argument_spec(),
    "color": {"type": "str", "required": True, "choices": ["blue", "green"]},
    "images": {"type": "dict", "default": {}},
    "images_only": {"type": "bool", "default": False},
    "staged_dir": {"type": "path", "required": True},
    "maintenance": {
        "type": "dict",
        "default": {},
        "options": {
            "probe_urls": {"type": "list", "elements": "str", "default": []},
            "probe_timeout": {"type": "float", "default": 10},
        },
    },
    "up_timeout": {"type": "int", "default": 30},
    "resume": {"type": "bool", "default": True},
    "record": {
        "type": "dict",
        "options": {
            "release_id": {"type": "str", "required": True},
            "step": {"type": "dict", "required": True},
        },
    },
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, Recreate)


if __name__ == "__main__":
    main()
