# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/release/lease.py: lease_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  lease:
    description:
      - The release lock this run holds (see M(switchyard.release.release_state)). Before its first change the
        module checks that O(lease.token) still holds the lock of O(lease.app) and renews it (for the ttl the lock
        was taken with); while it works it renews it every quarter of that ttl, and before each further change
        (a Runtime API command, a configuration written, a reload, a migration group, a backfill batch, a Compose
        command) it checks the lock again.
      - When another run holds the lock (it was taken over, or never taken by this run), or nobody does, the module
        makes no further change and fails, naming the holder.
      - Omitted - no check (the module used on its own, outside a release).
    type: dict
    suboptions:
      app:
        description: The application whose release lock is held.
        type: str
        required: true
      path:
        description: The application's state directory. Defaults to C(/var/lib/switchyard/<app>).
        type: path
      token:
        description: The token that C(release_state) returned when this run took the lock (C(lock_token)).
        type: str
        required: true
      release_id:
        description: The release the lock must be held for (checked when given).
        type: str
      ttl:
        description: Seconds a renewal keeps the lock valid for when the lock file does not record its own ttl.
        type: int
        default: 900
"""
