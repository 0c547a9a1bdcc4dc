# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The state directory of one application: ledger.json and release.lock, read and written only inside
an fcntl.flock on .release_state.mutex, so two runs can never both decide that the lock is free."""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import stat
import time
from contextlib import contextmanager, nullcontext

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import utc_now
from ansible_collections.switchyard.release.plugins.module_utils.common.files import fsync_directory, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.release.actions import apply_action
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import (
    DEFAULT_HISTORY_LIMIT,
    LEDGER_FILE,
    LedgerError,
    dump_ledger,
    empty_ledger,
    find_release,
    parse_ledger,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lock import (
    LockError,
    lock_state,
    parse_lock,
    public_lock,
    with_token,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.params import validate_params

LOCK_FILE = "release.lock"
MUTEX_FILE = ".release_state.mutex"


def state_argument_spec():
    """The app and path options (doc fragment switchyard.release.state documents them)."""
    return {"app": {"type": "str", "required": True}, "path": {"type": "path"}}


def state_directory(params):
    return params.get("path") or f"/var/lib/switchyard/{params['app']}"


def load_ledger(path, app):
    """The ledger in path; a missing file is an empty ledger."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return empty_ledger(app)
    return parse_ledger(text, app, path)


def save_ledger(path, ledger):
    write_atomically(path, dump_ledger(ledger), mode=0o600)


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


def make_state_directory(directory):
    """Create directory 0700 (its parents 0755) when missing, and tighten it to 0700 when its group or others
    may enter it (created 0755 by an older data role, or by hand): it holds the ledger, the lock, the secrets
    and the LB's sockets. Whether it created or tightened it."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if not stat.S_IMODE(os.stat(directory).st_mode) & 0o077:
            return False
    os.chmod(directory, 0o700)
    return True


def run_action(params, check_mode=False, clock=utc_now, host=None, pid=None):
    """Read, decide and (unless check_mode or nothing changes) write, inside the state mutex.

    Returns apply_action's result plus before ({ledger, lock}). Nothing is created when nothing
    changes: a read, a check, or a no-op never creates the directory.
    """
    directory = params["path"]
    ledger_path = os.path.join(directory, LEDGER_FILE)
    lock_path = os.path.join(directory, LOCK_FILE)

    def decide():
        before_ledger = load_ledger(ledger_path, params["app"])
        before_lock = read_lock(lock_path)
        now = clock()
        try:
            result = apply_action(before_ledger, before_lock, params, now, host, pid)
        except (LedgerError, LockError) as exc:
            # A refusal still says what is there (never another run's token).
            exc.details["lock"] = public_lock(exc.details.get("lock", before_lock))
            exc.details.setdefault("lock_state", lock_state(before_lock, now))
            exc.details.setdefault("ledger", before_ledger)
            rid = params.get("release_id")
            exc.details.setdefault("release", find_release(before_ledger, rid) if rid else None)
            raise
        result["before"] = {"ledger": before_ledger, "lock": before_lock}
        return result

    read_only = check_mode or params["action"] in ("get", "plan")
    try:
        exists = os.path.isdir(directory)
        tightened = exists and not read_only and make_state_directory(directory)
        if read_only or not exists:
            with state_mutex(directory, exclusive=False) if exists else nullcontext():
                result = decide()
            if read_only or not result["changed"]:
                return result
            make_state_directory(directory)
        with state_mutex(directory, exclusive=True):
            result = decide()
            if result["ledger"] != result["before"]["ledger"]:
                save_ledger(ledger_path, result["ledger"])
            if result["lock"] != result["before"]["lock"]:
                write_lock(lock_path, result["lock"])
        if tightened:
            result["changed"] = True
        return result
    except OSError as exc:
        raise LedgerError(f"cannot use the state directory {directory} of {params['app']}: {exc}") from exc


def read_state(params):
    """(ledger, lock) as they are now, read under the shared mutex; nothing is created."""
    directory = state_directory(params)
    try:
        exists = os.path.isdir(directory)
        with state_mutex(directory, exclusive=False) if exists else nullcontext():
            return (
                load_ledger(os.path.join(directory, LEDGER_FILE), params["app"]),
                read_lock(os.path.join(directory, LOCK_FILE)),
            )
    except OSError as exc:
        raise LedgerError(f"cannot use the state directory {directory} of {params['app']}: {exc}") from exc


ACTION_DEFAULTS = {
    "release_id": None,
    "owner": None,
    "lock_ttl": 3600,
    "lock_token": None,
    "take_lock": False,
    "kind": "release",
    "version": None,
    "color": None,
    "from_color": None,
    "images": None,
    "step": None,
    "drill": None,
    "weights": None,
    "reason": None,
    "force": False,
    "unlock": True,
    "history_limit": DEFAULT_HISTORY_LIMIT,
}


def action_params(base, **overrides):
    """The parameters of one release_state action, for the modules that write the ledger themselves
    (traffic, rollback): release_state's defaults, then base, then overrides; validated."""
    params = {**ACTION_DEFAULTS, **{k: v for k, v in base.items() if v is not None}, **overrides}
    params["path"] = state_directory(params)
    params["owner"] = params["owner"] or default_owner(hostname())
    return validate_params(with_token(params))


def hostname():
    return socket.gethostname()


def process_id():
    return os.getpid()


def default_owner(host):
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = str(os.getuid())
    return f"{user}@{host}"
