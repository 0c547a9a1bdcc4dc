# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The server-state file (`show servers state` dumped to disk), which HAProxy re-applies at start-up.

When the Runtime API is unreachable, a change goes through a reload: the weights into the
configuration, the admin states (maint, drain) into this file, so that the new worker starts with
both. HAProxy takes a saved weight only when the saved initial weight equals the configured one,
so both columns are written.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import OutputParseError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.parsers import (
    ADMIN_FDRAIN,
    ADMIN_FMAINT,
)

USER_STATE_BITS = {"ready": 0, "drain": ADMIN_FDRAIN, "maint": ADMIN_FMAINT}


def admin_bits(current, state):
    """current srv_admin_state with the user's part (forced maint, forced drain) set for state."""
    return (current & ~(ADMIN_FMAINT | ADMIN_FDRAIN)) | USER_STATE_BITS[state]


def set_server_states(text, backend, target):
    """target: {server: {"weight": int, "state": ready|drain|maint}} -> the dump with those servers changed.

    Every other line and column stays as it was. Raises OutputParseError when the dump cannot be read
    or lacks a server of target.
    """
    lines = (text or "").split("\n")
    if not lines or lines[0].strip() != "1":
        raise OutputParseError(f"unexpected server-state file (version line): {(text or '')[:200]!r}")
    header, seen = None, set()
    for index, line in enumerate(lines[1:], start=1):
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        if not line.strip():
            continue
        if header is None:
            raise OutputParseError("the server-state file has no header line")
        columns = line.split()
        row = dict(zip(header, columns))
        name = row.get("srv_name")
        if row.get("be_name") != backend or name not in target:
            continue
        want = target[name]
        row["srv_admin_state"] = str(admin_bits(int(row["srv_admin_state"]), want["state"]))
        row["srv_uweight"] = row["srv_iweight"] = str(want["weight"])
        lines[index] = " ".join(row[key] for key in header[: len(columns)])
        seen.add(name)
    missing = sorted(set(target) - seen)
    if missing:
        raise OutputParseError(f"the server-state file has no server {', '.join(missing)} in backend {backend}")
    return "\n".join(lines)
