# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""haproxy_servers: the servers of an HAProxy configuration, with their weights and `disabled`.

The lb role renders the configuration again on every run; it takes the weights already in the
file (kept in step with the Runtime API by haproxy_weight) so a re-run never moves traffic.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.config import ConfigError, servers_in_config


def haproxy_servers(text):
    if not isinstance(text, str):
        raise AnsibleFilterError(f"haproxy_servers expects the configuration text, got {type(text).__name__}")
    try:
        return servers_in_config(text)
    except ConfigError as exc:
        raise AnsibleFilterError(f"haproxy_servers: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"haproxy_servers": haproxy_servers}
