# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The LB kinds a release can drive, and the one function that builds a backend from the lb options."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters

KINDS = ("haproxy", "nginx", "traefik")


def load_balancer(options, runner):
    """The backend of options["kind"] (the traffic and rollback modules' lb option)."""
    kind = options.get("kind") or "haproxy"
    if kind == "haproxy":
        from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.backend import HAProxy

        return HAProxy(options, runner)
    if kind == "nginx":
        from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.backend import Nginx

        return Nginx(options, runner)
    if kind == "traefik":
        from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.backend import Traefik

        return Traefik(options, runner)
    raise InvalidParameters(f"lb.kind={kind!r}: allowed values are {', '.join(KINDS)}")


def lb_argument_spec():
    """The lb and routes options (doc fragment switchyard.release.lb documents them)."""
    return {
        "lb": {
            "type": "dict",
            "required": True,
            "options": {
                "kind": {"type": "str", "choices": list(KINDS), "default": "haproxy"},
                "dir": {"type": "path", "required": True},
                "container": {"type": "str"},
                "timeout": {"type": "float", "default": 5},
            },
        },
        "routes": {"type": "list", "elements": "str", "required": True},
    }
