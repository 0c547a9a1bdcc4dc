# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Nginx cannot tell: a color's health, its in-flight connections and the generation the serving workers
loaded, seen from inside the LB container.

Open-source Nginx has no active health checks and no per-server counters. One `docker exec` runs PROBE there
with nothing but sh, getent, curl and cat (the LB image must have them; TOOLS, checked by control_level):
per color, the addresses its name resolves to through the container's resolver (Docker's DNS, as Nginx
resolves them) and the status of a GET of the route's health path; the generation the internal listener
answers; then the container's TCP sockets (/proc/net/tcp and tcp6, parsed here): the established ones to a
color's address and port are the requests in flight to it (Nginx keeps no idle upstream connections: no
keepalive pool is configured).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import OutputParseError
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS
from ansible_collections.switchyard.release.plugins.module_utils.lb.nginx.config import GENERATION_PATH, INTERNAL_PORT

# What the backend runs in the LB container (the official nginx image has no `ss`; procps/iproute2 are not needed).
TOOLS = ("sh", "cat", "getent", "curl")
TOOLS_CHECK = "for tool in cat getent curl; do command -v $tool >/dev/null || echo missing $tool; done; echo ok"
# Values come as arguments ($1 route, $2 port, $3 health path), never inside the script.
PROBE = (
    r"""
for color in blue green; do
  addresses=$(getent ahostsv4 "$1-$color") || true
  code=$(curl -g -s -o /dev/null -m 2 -w '%{http_code}' "http://$1-$color:$2$3" 2>/dev/null) || true
  echo "color $color ${code:-000}" $addresses
done
echo "generation $(curl -s -m 2 http://127.0.0.1:"""
    + f"{INTERNAL_PORT}{GENERATION_PATH}"
    + r""" 2>/dev/null)"
echo "connections"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
"""
)
ESTABLISHED = "01"


def probe_args(docker, container, route, port, health_path):
    return [docker, "exec", container, "sh", "-c", PROBE, "sh", route, str(port), health_path]


def parse_probe(text, port):
    """({color: {code, addresses, sessions}}, generation or None) of PROBE's output for a route served on port."""
    colors, connections, in_connections, generation = {}, [], False, None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if in_connections:
            # /proc/net/tcp: sl local_address rem_address st ... (a header line per file)
            if len(words) >= 4 and words[0] != "sl" and words[3] == ESTABLISHED:
                connections.append(proc_address(words[2]))
            continue
        if words[0] == "connections":
            in_connections = True
        elif words[0] == "generation":
            generation = words[1] if len(words) == 2 else None
        elif words[0] == "color" and len(words) >= 3 and words[1] in COLORS:
            colors[words[1]] = {"code": int(words[2]) if words[2].isdigit() else 0, "addresses": addresses(words[3:])}
        else:
            raise OutputParseError(f"unexpected line in the probe of the LB container: {line!r}")
    if set(colors) != set(COLORS) or not in_connections:
        raise OutputParseError(f"the probe of the LB container printed {text[-500:]!r}")
    for view in colors.values():
        wanted = {(ipaddress.ip_address(address), int(port)) for address in view["addresses"]}
        view["sessions"] = sum(1 for peer in connections if peer in wanted)
    return colors, generation


def addresses(words):
    """The distinct IPv4 addresses among getent ahostsv4's words (address, socket type, name), sorted."""
    found = set()
    for word in words:
        try:
            found.add(ipaddress.IPv4Address(word))
        except ValueError:
            continue
    return [str(address) for address in sorted(found)]


def proc_address(text):
    """(address, port) of a /proc/net/tcp{,6} field: hex, each 32-bit word in host order (little-endian here),
    the port big-endian; an IPv4-mapped IPv6 address as its IPv4 address. None when it cannot be read."""
    host, _colon, port = text.partition(":")
    try:
        raw = b"".join(int(host[i : i + 8], 16).to_bytes(4, "little") for i in range(0, len(host), 8))
        address = ipaddress.ip_address(raw)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return address, int(port, 16)
    except ValueError:
        return None


def status(state, code):
    """(up, status, check_status) in HAProxy's vocabulary (the gate treats DOWN and MAINT as unhealthy)."""
    if state == "maint":
        return False, "MAINT", "L7OK" if code == 200 else ("L7STS" if code else "L4CON")
    if code == 200:
        return True, "DRAIN" if state == "drain" else "UP", "L7OK"
    return False, "DOWN", "L7STS" if code else "L4CON"
