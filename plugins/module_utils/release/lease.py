# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release lock as a lease, for the modules that change traffic, containers or the schema.

A run that took the lock passes its token (the `lease` option) to every module that changes
something. Before its first change the module checks, in the state directory, that the token still
holds the lock, and renews it; while it works (a health wait, a backfill, a gate's window) a
thread renews it again every quarter of its ttl. A run whose lock was taken over therefore stops
before its next change, and a release longer than the ttl keeps its lock.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.actions import apply_action
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import LockError

DEFAULT_TTL = 900


def lease_argument_spec():
    """The lease option (doc fragment switchyard.release.lease documents it)."""
    return {
        "lease": {
            "type": "dict",
            "options": {
                "app": {"type": "str", "required": True},
                "path": {"type": "path"},
                "token": {"type": "str", "required": True, "no_log": False},
                "release_id": {"type": "str"},
                "ttl": {"type": "int", "default": DEFAULT_TTL},
            },
        }
    }


class Lease:
    """One run's hold on the release lock of an application (None options: no lease, no checks)."""

    def __init__(self, options, check_mode=False, warn=None):
        self.options = options
        self.check_mode = check_mode
        self.warn = warn or (lambda message: None)
        self.lock = None
        self.lost = None

    def __bool__(self):
        return bool(self.options)

    def params(self):
        return store.action_params(
            {"app": self.options["app"], "path": self.options.get("path")},
            action="renew",
            release_id=self.options.get("release_id"),
            lock_token=self.options["token"],
            lock_ttl=self.options.get("ttl") or DEFAULT_TTL,
        )

    def hold(self):
        """Check that this run holds the lock and renew it; raise a LockError naming the holder if not.

        Check mode checks only. A renewal that cannot be written (a full disk) is a warning: the lock is
        still this run's until its current expiry, and refusing here would stop a restore of traffic.
        """
        if not self.options:
            return None
        params = self.params()
        try:
            if self.check_mode:
                ledger, lock = store.read_state(params)
                apply_action(ledger, lock, params, store.utc_now(), None, None)
                self.lock = lock
                return lock
            self.lock = store.run_action(params, host=store.hostname(), pid=store.process_id())["lock"]
        except LockError as exc:
            exc.msg = f"refusing to act: {exc.msg}"
            raise
        except SwitchyardError as exc:
            if isinstance(exc.__cause__, OSError):
                ledger, lock = store.read_state(params)
                apply_action(ledger, lock, params, store.utc_now(), None, None)  # still ours?
                self.warn(f"the release lock could not be renewed ({exc.msg}); it expires at {lock['expires_at']}")
                self.lock = lock
                return lock
            raise
        return self.lock

    @contextmanager
    def kept(self):
        """hold(), then renew every quarter of the ttl until the block ends (check mode: hold only)."""
        self.hold()
        if not self.options or self.check_mode:
            yield self
            return
        stop = threading.Event()
        period = max(1.0, float(self.options.get("ttl") or DEFAULT_TTL) / 4)

        def renew():
            while not stop.wait(period):
                try:
                    self.lock = store.run_action(self.params(), host=store.hostname(), pid=store.process_id())["lock"]
                except LockError as exc:
                    self.lost = exc.msg
                    return
                except SwitchyardError as exc:
                    self.warn(f"renewing the release lock failed: {exc.msg}")

        thread = threading.Thread(target=renew, name="switchyard-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)
            if self.lost:
                self.warn(f"the release lock was lost while this module worked: {self.lost}")
