# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Nginx cannot tell: a color's health and its in-flight connections, seen from inside the LB container.

Open-source Nginx has no active health checks and no per-server counters. One `docker exec` runs PROBE there:
per color, the addresses its name resolves to through the container's resolver (Docker's DNS, as Nginx
resolves them), the status of a GET of the route's health path, then the container's established TCP
connections (`ss`): those to a color's address and port are the requests in flight to it (Nginx keeps no
idle upstream connections: no keepalive pool is configured).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import OutputParseError
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS

# Values come as arguments ($1 route, $2 port, $3 health path), never inside the script.
PROBE = r"""
for color in blue green; do
  addresses=$(getent ahostsv4 "$1-$color" | awk '{print $1}' | sort -u | tr '\n' ' ')
  code=$(curl -g -s -o /dev/null -m 2 -w '%{http_code}' "http://$1-$color:$2$3" 2>/dev/null) || true
  echo "color $color ${code:-000} $addresses"
done
echo "connections"
ss -Htn state established
"""


def probe_args(docker, container, route, port, health_path):
    return [docker, "exec", container, "sh", "-c", PROBE, "sh", route, str(port), health_path]


def parse_probe(text, port):
    """{color: {code, addresses, sessions}} of PROBE's output for a route served on port."""
    colors, connections, in_connections = {}, [], False
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if in_connections:
            # Recv-Q Send-Q Local:Port Peer:Port (no State column under a state filter)
            if len(words) >= 4:
                connections.append(words[3])
            continue
        if words[0] == "connections":
            in_connections = True
        elif words[0] == "color" and len(words) >= 3 and words[1] in COLORS:
            colors[words[1]] = {"code": int(words[2]) if words[2].isdigit() else 0, "addresses": words[3:]}
        else:
            raise OutputParseError(f"unexpected line in the probe of the LB container: {line!r}")
    if set(colors) != set(COLORS) or not in_connections:
        raise OutputParseError(f"the probe of the LB container printed {text[-500:]!r}")
    for view in colors.values():
        wanted = set()
        for address in view["addresses"]:
            try:
                wanted.add((ipaddress.ip_address(address), int(port)))
            except ValueError:
                continue
        view["sessions"] = sum(1 for peer in connections if peer_of(peer) in wanted)
    return colors


def peer_of(text):
    host, _colon, port = text.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]), int(port)
    except ValueError:
        return None


def status(state, code):
    """(up, status, check_status) in HAProxy's vocabulary (the gate treats DOWN and MAINT as unhealthy)."""
    if state == "maint":
        return False, "MAINT", "L7OK" if code == 200 else ("L7STS" if code else "L4CON")
    if code == 200:
        return True, "DRAIN" if state == "drain" else "UP", "L7OK"
    return False, "DOWN", "L7STS" if code else "L4CON"
