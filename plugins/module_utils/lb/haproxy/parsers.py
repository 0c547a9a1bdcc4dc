# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parsers for HAProxy 2.6 Runtime API output: `show servers state`, `show stat` (CSV),
`show info`. Idempotence compares the user weight (srv_uweight) and the admin state, never
current sessions."""

from __future__ import annotations

import csv
import io

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import OutputParseError

# srv_admin_state bits (src/server.h): forced maint, inherited maint, config maint (disabled),
# forced drain, inherited drain, resolution maint, hostname maint.
ADMIN_FMAINT = 0x01
ADMIN_IMAINT = 0x02
ADMIN_CMAINT = 0x04
ADMIN_FDRAIN = 0x08
ADMIN_IDRAIN = 0x10
ADMIN_RMAINT = 0x20
ADMIN_HMAINT = 0x40
# srv_op_state: 0 stopped (DOWN), 1 starting, 2 running (UP), 3 stopping.
OP_RUNNING = 2


def admin_state_name(bits):
    """The admin state a user sets: maint, drain or ready (resolution maint is not the user's)."""
    if bits & (ADMIN_FMAINT | ADMIN_CMAINT):
        return "maint"
    if bits & ADMIN_FDRAIN:
        return "drain"
    return "ready"


def parse_servers_state(text):
    """`show servers state [<backend>]` -> {backend: {server: {...}}}."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1":
        raise OutputParseError(f"unexpected 'show servers state' output (version line): {text[:200]!r}")
    header = None
    servers = {}
    for line in lines[1:]:
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        if header is None:
            raise OutputParseError("'show servers state' output has no header line")
        row = dict(zip(header, line.split()))
        admin = int(row["srv_admin_state"])
        servers.setdefault(row["be_name"], {})[row["srv_name"]] = {
            "weight": int(row["srv_uweight"]),
            "initial_weight": int(row["srv_iweight"]),
            "admin_state": admin,
            "state": admin_state_name(admin),
            "op_state": int(row["srv_op_state"]),
            "address": row["srv_addr"],
            "port": row.get("srv_port"),
            "fqdn": row.get("srv_fqdn"),
        }
    return servers


def parse_stat(text):
    """`show stat` CSV -> {(proxy, server): row}, numbers as int where they are numbers."""
    text = (text or "").lstrip()
    if not text.startswith("# "):
        raise OutputParseError(f"unexpected 'show stat' output: {text[:200]!r}")
    reader = csv.DictReader(io.StringIO(text[2:]))
    rows = {}
    for row in reader:
        clean = {}
        for key, value in row.items():
            if not key or key == "-":
                continue
            clean[key] = int(value) if value and value.lstrip("-").isdigit() else value
        rows[(clean["pxname"], clean["svname"])] = clean
    return rows


def parse_info(text):
    """`show info` -> {key: value}."""
    info = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info
