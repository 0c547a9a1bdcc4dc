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
import time
from contextlib import contextmanager

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.release import store
from ansible_collections.switchyard.release.plugins.module_utils.release.actions import apply_action
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import LockError, NotHolder, public_lock

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
        self.renewed_at = time.monotonic()

    def __bool__(self):
        return bool(self.options)

    def guard(self):
        """check, or None without a lease: what the code that changes things calls before each change."""
        return self.check if self.options and not self.check_mode else None

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
                try:
                    apply_action(ledger, lock, params, store.utc_now(), None, None)
                except LockError as exc:
                    exc.details["lock"] = public_lock(exc.details.get("lock"))
                    raise
                self.lock = lock
                return lock
            self.lock = store.run_action(params, host=store.hostname(), pid=store.process_id())["lock"]
            self.renewed_at = time.monotonic()
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

    def verify(self):
        """A real read of the lock, not the heartbeat's last word (it looks every quarter of the ttl): raise
        NotHolder naming the holder when this run no longer holds it, so a forced takeover - a rollback run with
        switchyard_force_lock - is seen before the next change. Writes nothing (cheap enough for every 0.5 s)."""
        if not self.options or self.check_mode:
            return None
        params = self.params()
        ledger, lock = store.read_state(params)
        try:
            apply_action(ledger, lock, params, store.utc_now(), None, None)
        except NotHolder as exc:
            self.lost = exc.msg
            exc.msg = f"refusing to act: {exc.msg}"
            exc.details["lock"] = public_lock(exc.details.get("lock"))
            raise
        return lock

    def period(self):
        """Seconds between renewals: a quarter of the ttl the lock was taken with (the lease's own ttl
        for a lock that does not say)."""
        ttl = (self.lock or {}).get("ttl") or self.options.get("ttl") or DEFAULT_TTL
        return max(1.0, float(ttl) / 4)

    def check(self):
        """Before each change of a long module run: refuse once the heartbeat saw the lock taken, and
        renew now when the last renewal is older than the period (the heartbeat may be stuck on the
        state directory's mutex)."""
        if not self.options or self.check_mode:
            return
        if self.lost:
            raise NotHolder(f"refusing to act: the release lock was lost while this module worked: {self.lost}")
        if time.monotonic() - self.renewed_at > self.period():
            self.hold()

    @contextmanager
    def kept(self):
        """hold(), then renew every quarter of the ttl until the block ends (check mode: hold only).

        Only a refusal (NotHolder: another run holds the lock, or nobody) ends the heartbeat; a busy
        mutex or an unreadable file is retried at the next tick. check() turns a loss into a refusal
        before the module's next change."""
        self.hold()
        if not self.options or self.check_mode:
            yield self
            return
        stop = threading.Event()

        def renew():
            while not stop.wait(self.period()):
                try:
                    self.lock = store.run_action(self.params(), host=store.hostname(), pid=store.process_id())["lock"]
                    self.renewed_at = time.monotonic()
                except NotHolder as exc:
                    self.lost = exc.msg
                    return
                except SwitchyardError as exc:
                    self.warn(f"renewing the release lock failed, retrying: {exc.msg}")

        thread = threading.Thread(target=renew, name="switchyard-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)
            if self.lost:
                self.warn(f"the release lock was lost while this module worked: {self.lost}")
