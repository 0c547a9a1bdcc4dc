# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nginx_routes: the etc/routes.conf the lb role writes for the Nginx LB (switchyard_lb_kind: nginx).

The file is the Nginx backend's own (lb/nginx/config.py renders it from its state line): the role gives it the
routes and the sticky cookie, and keeps the weights, states and canary candidate it holds, so a re-run never
moves traffic and returns the very text in place when nothing else changed.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.backend import new_generation
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.config import for_role


def nginx_routes(text, routes, initial_weights, sticky_cookie="", retry_after=30):
    if text is not None and not isinstance(text, str):
        raise AnsibleFilterError(f"nginx_routes expects the text of routes.conf or None, got {type(text).__name__}")
    try:
        return for_role(text or None, routes, initial_weights, sticky_cookie, new_generation(), retry_after)
    except SwitchyardError as exc:
        raise AnsibleFilterError(f"nginx_routes: {exc.msg}") from exc


class FilterModule:
    def filters(self):
        return {"nginx_routes": nginx_routes}
