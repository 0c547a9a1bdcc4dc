# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""release_state's actions: the transitions combined with the lock's decisions. Pure."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import (
    DEFAULT_HISTORY_LIMIT,
    LedgerError,
    find_release,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import (
    LockError,
    drop_lock,
    held_message,
    holds,
    lock_state,
    renew_lock,
    take_lock,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.transitions import (
    begin,
    fail,
    promote,
    record_drill,
    record_step,
    record_takeover,
    retire,
    rollback,
)

ENDING_ACTIONS = ("promote", "rollback", "fail", "retire", "drill")


def lock_changed(before, after):
    """Whether the lock changed otherwise than by a renewal (a later expiry of the same holder)."""
    if before is None or after is None:
        return before is not after

    def holder(lock):
        return {k: v for k, v in lock.items() if k != "expires_at"}

    return holder(before) != holder(after)


def apply_action(ledger, lock, params, now, host, pid):
    """The ledger and the lock after params["action"], and what the module returns.

    Pure: nothing is read or written. Raises LedgerError or LockError on refusal. The lock belongs to
    one run, named by params["lock_token"]; begin, step and renew need it and renew it.
    """
    action, app, release_id = params["action"], params["app"], params.get("release_id")
    token, ttl = params.get("lock_token"), params["lock_ttl"]
    new_ledger, new_lock, takeover = ledger, lock, None
    force = params.get("force", False)
    limit = params.get("history_limit", DEFAULT_HISTORY_LIMIT)
    if action == "lock" or (action == "begin" and params.get("take_lock")):
        # begin with take_lock: the lock and the new entry in one read-modify-write.
        new_lock, takeover = take_lock(lock, app, release_id, params["owner"], ttl, now, host, pid, token, force=force)
        if takeover:
            new_ledger = record_takeover(ledger, takeover, now, limit)
    if action == "unlock":
        new_lock = drop_lock(lock, app, token, force=force)
    elif action == "renew":
        new_lock = renew_lock(lock, app, release_id, token, ttl, now)
    elif action == "begin":
        new_lock = renew_lock(new_lock, app, release_id, token, ttl, now, action)
        new_ledger = begin(
            new_ledger,
            release_id,
            now,
            kind=params.get("kind") or "release",
            owner=params["owner"],
            version=params.get("version"),
            color=params.get("color"),
            from_color=params.get("from_color"),
            images=params.get("images"),
            history_limit=limit,
            strategy=params.get("strategy"),
            experiment=params.get("experiment"),
        )
    elif action == "step":
        new_lock = renew_lock(lock, app, release_id, token, ttl, now, action)
        new_ledger = record_step(ledger, release_id, params["step"], now)
    elif action in ENDING_ACTIONS:
        weights = params.get("weights")
        if action == "promote":
            new_ledger = promote(ledger, release_id, now, color=params.get("color"), weights=weights)
        elif action == "rollback":
            new_ledger = rollback(
                ledger, release_id, params["color"], now, reason=params.get("reason"), weights=weights
            )
        elif action == "drill":
            new_ledger = record_drill(ledger, params["drill"], now, limit)
        elif action == "fail":
            new_ledger = fail(
                ledger,
                release_id,
                now,
                reason=params.get("reason"),
                weights=weights,
                untouched=bool(params.get("untouched")),
            )
        else:
            new_ledger = retire(ledger, release_id, params.get("color"), now, weights=weights)
        if new_ledger is not ledger and lock is not None and not holds(lock, token) and not force:
            raise LockError(
                f"{held_message(app, lock)}: this run (release {release_id}) does not hold it (see the ledger's "
                f"takeovers), so action={action} would change the ledger under another run's lock - refused "
                "(force=true overrides)",
                lock=lock,
                lock_state=lock_state(lock, now),
            )
        if params.get("unlock", True) and holds(lock, token):
            new_lock = None
    elif action not in ("get", "plan", "lock"):
        raise LedgerError(f"action: unknown action {action!r}")
    return {
        "changed": new_ledger != ledger or lock_changed(lock, new_lock),
        "ledger": new_ledger,
        "lock": new_lock,
        "lock_state": lock_state(new_lock, now),
        "lock_token": new_lock["token"] if holds(new_lock, token) else None,
        "release": find_release(new_ledger, release_id) if release_id else None,
        "takeover": takeover,
    }
