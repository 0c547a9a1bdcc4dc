# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release lock of one application on one Docker host: which release owns the host, since when
and until when. The decisions (take, renew, take over, release) are pure functions of the current
lock and the time; release/store.py reads and writes the file inside the state directory's mutex."""

from __future__ import annotations

import json
import secrets

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import (
    after_seconds,
    format_time,
    parse_time,
)
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError


class LockError(SwitchyardError):
    """A refusal or an unreadable lock; details go into the module's failure result."""


class NotHolder(LockError):
    """The run's token does not hold the lock (nobody does, or another run took it): the run lost it."""

    lost_lock = True  # read by code that must stop at once (lb's best-effort shifts), without importing this


def new_token():
    """The token of one run: whoever holds it holds the lock."""
    return secrets.token_hex(16)


def with_token(params):
    """params with a new lock_token when the action takes the lock and the caller brought none."""
    takes = params["action"] == "lock" or (params["action"] == "begin" and params.get("take_lock"))
    if takes and not params.get("lock_token"):
        return {**params, "lock_token": new_token()}
    return params


def expiry_after(now, ttl):
    """now + ttl, rounded up to the second: the stored expiry is never earlier than asked."""
    return after_seconds(now, ttl)


def lock_state(lock, now):
    """free (no lock), held, or expired (the file is still there, but anyone may take it over)."""
    if lock is None:
        return "free"
    return "expired" if now >= parse_time(lock["expires_at"]) else "held"


def new_lock(owner, release_id, ttl, now, host, pid, token=None):
    return {
        "owner": owner,
        "release_id": release_id,
        "token": token,
        # Renewals keep the ttl the lock was taken with, whoever renews it.
        "ttl": ttl,
        "acquired_at": format_time(now),
        "expires_at": expiry_after(now, ttl),
        "host": host,
        "pid": pid,
    }


def public_lock(lock):
    """The lock as results, diffs and errors show it: without its token, which only its holder has."""
    if not lock:
        return lock
    return {key: value for key, value in lock.items() if key != "token"}


def held_message(app, lock):
    return (
        f"release lock of {app} is held by {lock['owner']} (release {lock['release_id']}) since {lock['acquired_at']}, "
        f"expires {lock['expires_at']}"
    )


def holds(lock, token):
    """Whether the run with token holds lock (a lock written without a token is nobody's)."""
    return lock is not None and bool(token) and lock.get("token") == token


def take_lock(current, app, release_id, owner, ttl, now, host, pid, token, force=False):
    """The lock after `lock`, and the take-over record when another run's lock was taken.

    The lock belongs to one run (its token), not to a release: two runs resuming the same paused
    release are two holders. Free: taken. Held by this token: renewed (acquired_at kept). Held by
    another run: refused, unless it has expired or force is set; then taken over.
    """
    state = lock_state(current, now)
    if state == "free":
        return new_lock(owner, release_id, ttl, now, host, pid, token), None
    if holds(current, token):
        if current["release_id"] != release_id:
            raise LockError(
                f"lock_token holds the release lock of {app} for release {current['release_id']}, not {release_id}",
                lock=current,
                lock_state=state,
            )
        return renewed(current, ttl, now), None
    if state == "held" and not force:
        same = " (another run of the same release)" if current["release_id"] == release_id else ""
        raise LockError(
            f"{held_message(app, current)}{same}; wait until that run ends or its lock expires, or take it over "
            "with force=true once you know that run is dead",
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
    return new_lock(owner, release_id, ttl, now, host, pid, token), takeover


def renewed(current, ttl, now):
    """The same lock, valid from now for the ttl it was taken with (ttl for a lock that does not say;
    never shortened)."""
    expires = expiry_after(now, current.get("ttl") or ttl)
    if parse_time(expires) <= parse_time(current["expires_at"]):
        return current
    return {**current, "expires_at": expires}


def renew_lock(current, app, release_id, token, ttl, now, action="renew"):
    """The lock after a step of its holder: checked (refused when another run holds it), then renewed."""
    require_holder(current, app, release_id, token, action, now)
    return renewed(current, ttl, now)


def drop_lock(current, app, token, force=False):
    """The lock after `unlock`: None when token holds it (or with force); absent stays absent."""
    if current is None or holds(current, token) or force:
        return None
    raise LockError(
        f"{held_message(app, current)}, not by this run (lock_token); "
        "unlock it with force=true only if that run is dead",
        lock=current,
    )


def require_holder(current, app, release_id, token, action, now):
    """begin, step and renew run only under their own run's lock (an expired one still counts while
    nobody took it over)."""
    if current is None:
        raise NotHolder(
            f"action={action} needs the release lock of {app} held by this run (release {release_id}), and nobody "
            "holds it: take it first with action=lock",
            lock=None,
            lock_state="free",
        )
    if not holds(current, token):
        lost = " - this run has lost it (see the ledger's takeovers)" if token else " (no lock_token given)"
        raise NotHolder(
            f"action={action} needs the release lock of {app} held by this run (release {release_id}), but the "
            f"{held_message(app, current)}{lost}",
            lock=current,
            lock_state=lock_state(current, now),
        )
    if release_id and current["release_id"] != release_id:
        raise LockError(
            f"action={action}: this run's lock is for release {current['release_id']}, not {release_id}",
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
