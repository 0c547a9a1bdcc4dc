# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release lock of one application on one Docker host: a JSON file that says which release owns
the host, since when and until when.

The decisions (take, renew, take over, release) are pure functions of the current lock and the
time. The file is only read and written inside the state directory's mutex (an fcntl.flock on
.release_state.mutex), so two runs can never both decide that the lock is free.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from ansible_collections.switchyard.release.plugins.module_utils.atomic_file import fsync_directory, write_atomically

LOCK_FILE = "release.lock"
MUTEX_FILE = ".release_state.mutex"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# datetime.UTC is Python 3.11+; modules run on the target's Python (3.8 and later).
UTC = timezone.utc  # noqa: UP017


class LockError(Exception):
    """A refusal or an unreadable lock; details go into the module's failure result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def format_time(moment):
    """UTC ISO-8601 with seconds: 2026-11-26T17:00:00Z."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text):
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def expiry_after(now, ttl):
    """now + ttl, rounded up to the second: the stored expiry is never earlier than asked."""
    moment = now + timedelta(seconds=ttl)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return format_time(moment)


def lock_state(lock, now):
    """free (no lock), held, or expired (the file is still there, but anyone may take it over)."""
    if lock is None:
        return "free"
    return "expired" if now >= parse_time(lock["expires_at"]) else "held"


def new_lock(owner, release_id, ttl, now, host, pid):
    return {
        "owner": owner,
        "release_id": release_id,
        "acquired_at": format_time(now),
        "expires_at": expiry_after(now, ttl),
        "host": host,
        "pid": pid,
    }


def held_message(app, lock):
    return (
        f"release lock of {app} is held by {lock['owner']} (release {lock['release_id']}) since {lock['acquired_at']}, "
        f"expires {lock['expires_at']}"
    )


def take_lock(current, app, release_id, owner, ttl, now, host, pid, force=False):
    """The lock after `lock`, and the take-over record when another release's lock was taken.

    Free: taken. Held by release_id: unchanged (its expiry is kept), or renewed once expired.
    Held by another release: refused, unless it has expired or force is set; then taken over.
    """
    state = lock_state(current, now)
    if state == "free":
        return new_lock(owner, release_id, ttl, now, host, pid), None
    if current["release_id"] == release_id:
        if state == "held":
            return current, None
        return new_lock(owner, release_id, ttl, now, host, pid), None
    if state == "held" and not force:
        raise LockError(
            f"{held_message(app, current)}; wait until that release ends or its lock expires, or take it over "
            "with force=true once you know that release is dead",
            lock=current,
            lock_state=state,
        )
    takeover = {
        "at": format_time(now),
        "by": owner,
        "release_id": release_id,
        "previous_owner": current["owner"],
        "previous_release_id": current["release_id"],
        "since": current["acquired_at"],
        "expired_at": current["expires_at"],
        "forced": state == "held",
    }
    return new_lock(owner, release_id, ttl, now, host, pid), takeover


def drop_lock(current, app, release_id, force=False):
    """The lock after `unlock`: None when release_id held it (or with force); absent stays absent."""
    if current is None or current["release_id"] == release_id or force:
        return None
    raise LockError(
        f"{held_message(app, current)}, not by release {release_id}; "
        "unlock it with force=true only if that release is dead",
        lock=current,
    )


def require_holder(current, app, release_id, action, now):
    """begin and step run only under the lock of their own release (an expired one still counts while
    nobody took it over)."""
    if current is None:
        raise LockError(
            f"action={action} needs the release lock of {app} held by release {release_id}, and nobody holds it: "
            "take it first with action=lock",
            lock=None,
            lock_state="free",
        )
    if current["release_id"] != release_id:
        raise LockError(
            f"action={action} needs the release lock of {app} held by release {release_id}, but the "
            f"{held_message(app, current)}",
            lock=current,
            lock_state=lock_state(current, now),
        )


def parse_lock(text, source):
    try:
        lock = json.loads(text)
    except ValueError as exc:
        raise LockError(
            f"the release lock file {source} is not valid JSON ({exc}); it was left as it is: "
            "look at it, then remove it by hand if no release is running"
        ) from exc
    missing = [
        key
        for key in ("owner", "release_id", "acquired_at", "expires_at")
        if not isinstance(lock, dict) or key not in lock
    ]
    if missing:
        raise LockError(
            f"the release lock file {source} lacks {', '.join(missing)}; it was left as it is: "
            "look at it, then remove it by hand if no release is running"
        )
    try:
        parse_time(lock["expires_at"])
        parse_time(lock["acquired_at"])
    except (TypeError, ValueError) as exc:
        raise LockError(f"the release lock file {source} has an unreadable time ({exc}); it was left as it is") from exc
    return lock


def read_lock(path):
    """The lock in path, or None when there is no lock file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    return parse_lock(text, path)


def write_lock(path, lock):
    if lock is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    else:
        write_atomically(path, json.dumps(lock, indent=2, sort_keys=True) + "\n", mode=0o600)


def _flock(fd, operation, path, timeout, poll):
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError as exc:
            if time.monotonic() >= deadline:
                raise LockError(
                    f"another release_state run has held {path} for more than {timeout:g} s; "
                    "retry, or look for a stuck process"
                ) from exc
            time.sleep(poll)


@contextmanager
def state_mutex(directory, exclusive=True, timeout=30.0, poll=0.02):
    """Serialise the read-modify-write of the lock and the ledger of one state directory.

    exclusive creates the mutex file (0600) when missing. Shared (for reads and check mode) never
    creates anything: without a mutex file nobody has written yet, and the read goes unguarded.
    """
    path = os.path.join(directory, MUTEX_FILE)
    if exclusive:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    else:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # no mutex file yet (or not ours to read): the reads say what is wrong
            fd = None
    try:
        if fd is not None:
            _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, path, timeout, poll)
        yield
    finally:
        if fd is not None:
            os.close(fd)
