# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release lock of one application on one Docker host: which release owns the host, since when
and until when. The decisions (take, renew, take over, release) are pure functions of the current
lock and the time; release/store.py reads and writes the file inside the state directory's mutex."""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import (
    after_seconds,
    format_time,
    parse_time,
)
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError


class LockError(SwitchyardError):
    """A refusal or an unreadable lock; details go into the module's failure result."""


def expiry_after(now, ttl):
    """now + ttl, rounded up to the second: the stored expiry is never earlier than asked."""
    return after_seconds(now, ttl)


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
