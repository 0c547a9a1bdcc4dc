# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Traefik has loaded, read inside its container in one `docker exec`: /ping and its API (on the
loopback-only entrypoint `traefik`, never published), the colors' addresses (Docker's DNS), the established
connections (/proc/net/tcp and tcp6, parsed here: with no idle keep-alive to the colors, an established
connection to a color is a request in flight), the start time of its process (it changes only when Traefik
restarts) and the uptime of the host (how long ago that was).

What the LB image must contain (TOOLS): a POSIX sh, cat, cut, awk, sort, getent, and curl or wget - busybox has
them all but curl (wget is used then), so the official Alpine-based traefik image qualifies; an image without
them fails naming what is missing.

Nothing user-given goes into the script: the host names are checked route names, passed as arguments.
"""

from __future__ import annotations

import json
import os
import socket

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS, LBError, LBUnreachable
from ansible_collections.switchyard.release.plugins.module_utils.lb.traefik.dynamic import (
    candidate_router,
    check_route_name,
    header_router,
    service_name,
)

API = "http://127.0.0.1:8081/api"
TOOLS = ("cat", "cut", "awk", "sort", "getent")
SCRIPT = r"""
base=http://127.0.0.1:8081
missing=
for tool in cat cut awk sort getent; do command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done
if command -v curl >/dev/null 2>&1; then get() { curl -fsS --max-time 3 "$1"; }
elif command -v wget >/dev/null 2>&1; then get() { wget -q -T 3 -O - "$1"; }
else missing="$missing curl-or-wget"; get() { return 1; }; fi
echo @@missing; echo "$missing"
echo @@ping; get "$base/ping" || echo unreachable
echo; echo @@services; get "$base/api/http/services?per_page=10000" || echo '"unreachable"'
echo; echo @@routers; get "$base/api/http/routers?per_page=10000" || echo '"unreachable"'
echo; echo @@middlewares; get "$base/api/http/middlewares?per_page=10000" || echo '"unreachable"'
echo; echo @@hosts
for host in "$@"; do
  { getent ahostsv4 "$host" 2>/dev/null || getent hosts "$host"; } | awk -v h="$host" '{print h, $1}' | sort -u
done
echo @@tcp; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo @@start; cut -d' ' -f22 /proc/1/stat
echo @@uptime; cut -d' ' -f1 /proc/uptime
"""
ESTABLISHED = "01"


def tcp_address(text):
    """'0100007F:1F90' (or the 32 hex digits of IPv6) of /proc/net/tcp* as 'ip:port'; IPv4-mapped as IPv4."""
    hex_ip, _sep, hex_port = text.partition(":")
    raw = bytes.fromhex(hex_ip)
    # The kernel prints each 32-bit word in host order (little-endian here).
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 16 and raw[:12] == b"\0" * 10 + b"\xff\xff":
        raw = raw[12:]
    address = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
    return f"{address}:{int(hex_port, 16)}"


def established_peers(text):
    """The remote 'ip:port' of every established connection in the lines of /proc/net/tcp and tcp6."""
    peers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or fields[3] != ESTABLISHED:
            continue
        try:
            peers.append(tcp_address(fields[2]))
        except ValueError:
            continue
    return peers


def split_sections(text):
    sections, name = {}, None
    for line in text.splitlines():
        if line.startswith("@@"):
            name = line[2:].strip()
            sections[name] = []
        elif name:
            sections[name].append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


class Snapshot:
    """The parsed answer: services and routers by name, addresses by host, established peers, start."""

    def __init__(self, text):
        sections = split_sections(text)
        lacking = sections.get("missing", "").split()
        if lacking:
            raise LBError(
                f"Traefik's container lacks {', '.join(lacking)}: the LB image must contain a POSIX sh, "
                f"{', '.join(TOOLS)} and curl or wget (busybox has them, with wget)"
            )
        missing = [s for s in ("services", "routers", "middlewares", "start") if s not in sections]
        if missing:
            raise LBError(f"Traefik's container answered without {', '.join(missing)}: {text[-500:]!r}")
        parsed = {}
        for name in ("services", "routers", "middlewares"):
            try:
                parsed[name] = json.loads(sections[name])
            except ValueError as exc:
                raise LBError(f"Traefik's API answered {name} with no JSON: {sections[name][:300]!r}") from exc
            if parsed[name] == "unreachable":
                raise LBUnreachable(f"Traefik's API ({API}) does not answer in its container")
        self.services = {s["name"]: s for s in parsed["services"]}
        self.routers = {r["name"]: r for r in parsed["routers"]}
        self.middlewares = {m["name"]: m for m in parsed["middlewares"]}
        self.hosts = {}
        for line in sections.get("hosts", "").splitlines():
            host, _sep, address = line.partition(" ")
            self.hosts.setdefault(host, set()).add(address.strip())
        self.peers = established_peers(sections.get("tcp", ""))
        self.start = sections["start"].strip()
        self.ping = sections.get("ping", "").strip() == "OK"
        try:
            # How many seconds ago Traefik's process started (its start time is in clock ticks since boot).
            self.age = float(sections["uptime"]) - int(self.start) / os.sysconf("SC_CLK_TCK")
        except (KeyError, ValueError):
            self.age = None

    def errors(self, prefix=None):
        """["kind name: error"] of what Traefik could not load (all of file's, or those of one route)."""
        found = []
        for kind, items in (("router", self.routers), ("service", self.services), ("middleware", self.middlewares)):
            for name, item in sorted(items.items()):
                if not name.endswith("@file") or (prefix and not name.startswith(prefix)):
                    continue
                if item.get("error") or item.get("status") not in (None, "enabled"):
                    found.append(f"{kind} {name} is {item.get('status')}: {'; '.join(item.get('error') or [])}")
        return found

    def sessions(self, host, port):
        addresses = {f"{a}:{port}" for a in self.hosts.get(host, ())}
        return sum(1 for peer in self.peers if peer in addresses)

    def route_view(self, route, port, record, trusted):
        """{color: {weight, state, up, status, sessions}} as loaded, the record giving the weight a color out of
        rotation comes back with (and the state, when no header router tells drain from maint)."""
        check_route_name(route)
        weighted = (self.services.get(f"{route}@file") or {}).get("weighted")
        if weighted is None:
            raise LBError(f"Traefik has no weighted service {route}@file loaded (the route's file is not loaded)")
        listed = {child["name"]: int(child.get("weight", 1)) for child in weighted.get("services") or []}
        views = {}
        for color in COLORS:
            recorded = record["colors"][color]
            service = self.services.get(f"{service_name(route, color)}@file") or {}
            statuses = list((service.get("serverStatus") or {}).values())
            up = bool(statuses) and all(s == "UP" for s in statuses)
            headed = any(
                n.startswith(f"{header_router(route, color)}@")
                or n.startswith(f"{header_router(route, color)}-default@")
                for n in self.routers
            )
            if service_name(route, color) in listed:
                state, weight = "ready", listed[service_name(route, color)]
            elif trusted:
                state, weight = ("drain" if headed else "maint"), recorded["weight"]
            else:
                state, weight = ("maint" if recorded["state"] == "maint" else "drain"), recorded["weight"]
            status = "MAINT" if state == "maint" else ("DOWN" if not up else "DRAIN" if state == "drain" else "UP")
            views[color] = {
                "weight": weight,
                "state": state,
                "up": up and state != "maint",
                "status": status,
                "sessions": self.sessions(service_name(route, color), port),
            }
        return views

    def candidate(self, route):
        """The color X-Canary: 1 reaches on route, or None."""
        for name, router in self.routers.items():
            if name in (f"{candidate_router(route)}@file", f"{candidate_router(route)}-default@file"):
                for color in COLORS:
                    if router.get("service") in (service_name(route, color), f"{service_name(route, color)}@file"):
                        return color
        return None


def read(runner, docker, container, hosts):
    """A Snapshot of what Traefik in container has loaded; LBUnreachable when the container does not answer."""
    for host in hosts:
        check_route_name(host.rsplit("-", 1)[0])
    args = [docker, "exec", container, "sh", "-c", SCRIPT, "switchyard-read"] + list(hosts)
    rc, out, err = runner.run(args, f"reading Traefik's API in {container}", check=False)
    if rc != 0:
        raise LBUnreachable(f"cannot read Traefik's API in {container} (rc={rc}): {(err or out).strip()[-500:]}")
    return Snapshot(out)
