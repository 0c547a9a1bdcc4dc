# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""trusted_sources: the client networks HAProxy lets choose a color with X-Canary (and tells which server
answered), from switchyard_canary_trusted_sources plus the Docker host's address on <app>_public.

Each entry ends up in an `acl ... src` line of haproxy.cfg, so only what parses as an address or a network
gets there: anything else (a word, a newline that would start a directive) is refused naming the variable.
The Docker host is an address known only at run time: Docker masquerades every request the host sends to
the published port (the smoke probes to 127.0.0.1) to the gateway of the network the LB is published on.
"""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

VARIABLE = "switchyard_canary_trusted_sources"
MIN_PREFIX = {4: 8, 6: 16}
ALLOWED = "an IPv4 or IPv6 address with an optional /prefix, such as 127.0.0.0/8, 10.1.2.3 or ::1/128"


def network(value, name):
    """The network value names, as HAProxy writes it (10.0.0.0/8); AnsibleFilterError naming name otherwise."""
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{name}={value!r} is not a CIDR: use {ALLOWED}")
    try:
        # strict: 172.22.0.1/16 (host bits set) is a typo for an address or a network, not silently the network.
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise AnsibleFilterError(
            f"{name}={value!r} is not a CIDR: use {ALLOWED} (no host bits after the prefix)"
        ) from exc
    # Wider than a /8 (IPv4) or a /16 (IPv6), or every IPv4 client through its mapped IPv6 address, is the public.
    mapped = net.version == 6 and net.subnet_of(ipaddress.ip_network("::ffff:0:0/96"))
    if net.prefixlen < MIN_PREFIX[net.version] or mapped:
        raise AnsibleFilterError(
            f"{name}={value!r} trusts too many clients (at most a /8 of IPv4 or a /16 of IPv6, no IPv4-mapped "
            "network): list the networks the probes come from"
        )
    return net


def trusted_sources(sources, docker_host=None, require_docker_host=False):
    """[CIDR, ...] without duplicates, in order: each of sources, then each address of docker_host (a list).
    require_docker_host: the Docker host is to be trusted, so its address must be known."""
    if not isinstance(sources, (list, tuple)):
        raise AnsibleFilterError(f"{VARIABLE} must be a list of CIDRs ({ALLOWED}), got {sources!r}")
    found = [network(value, f"{VARIABLE}[{index}]") for index, value in enumerate(sources)]
    if require_docker_host and not any(docker_host or []):
        raise AnsibleFilterError(
            "switchyard_canary_trust_docker_host is true, but the LB's public network shows no gateway address (the "
            "address requests from the Docker host come from): add the Docker host's address on it to "
            f"{VARIABLE} and set switchyard_canary_trust_docker_host to false"
        )
    for address in docker_host or []:
        if address:
            found.append(network(address, "the gateway address of the LB's public network"))
    unique = []
    for net in found:
        if net not in unique:
            unique.append(net)
    return [str(net) for net in unique]


class FilterModule:
    def filters(self):
        return {"trusted_sources": trusted_sources}
