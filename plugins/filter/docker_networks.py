# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docker_networks: the application's networks as one `docker network inspect` shows them - whether each is
internal, and its gateway addresses (the address the Docker host has on it: HAProxy sees it as the source
of every request the host sends to the published port, so the lb role trusts it with the canary header).

One read for both: the networks that are missing are created, and the gateway costs no extra command.
A missing network is not an error here (it is created next); any other failure of the command is.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

MISSING_RE = re.compile(r"^Error(: | response from daemon: )(No such network|network .* not found)", re.IGNORECASE)


def docker_networks(result):
    """{name: {"internal": bool, "gateways": [address, ...]}} of the registered result of
    `docker network inspect NAME... --format '{{.Name}} {{.Internal}}{{range .IPAM.Config}} {{.Gateway}}{{end}}'`."""
    if not isinstance(result, dict) or "rc" not in result:
        raise AnsibleFilterError("docker_networks takes the registered result of docker network inspect")
    failures = [line for line in result.get("stderr", "").splitlines() if line.strip() and not MISSING_RE.match(line)]
    if result["rc"] != 0 and (failures or not result.get("stderr", "").strip()):
        raise AnsibleFilterError(
            f"docker network inspect failed (rc={result['rc']}): {'; '.join(failures) or 'no output'}"
        )
    networks = {}
    for line in result.get("stdout", "").splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[1] not in ("true", "false"):
            raise AnsibleFilterError(f"docker network inspect printed {line!r}: expected NAME INTERNAL [GATEWAY...]")
        networks[fields[0]] = {"internal": fields[1] == "true", "gateways": [g for g in fields[2:] if g]}
    return networks


class FilterModule:
    def filters(self):
        return {"docker_networks": docker_networks}
