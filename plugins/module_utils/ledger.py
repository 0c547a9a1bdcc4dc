# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release ledger of one application on one Docker host: which color is live, which one was,
what each color runs, the migrations applied and contracted, and what every release did.

The ledger is a JSON document (schema 1) in <path>/ledger.json. It changes only through the pure
transition functions below - each takes a ledger and returns a new one (the same object when there
is nothing to do) - and apply_action(), which combines them with the release lock's decisions.
run_action() does the reading and writing, inside the state directory's mutex.
"""

from __future__ import annotations

import copy
import json
import os
import re
from contextlib import nullcontext
from datetime import datetime

from ansible_collections.switchyard.release.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.release_lock import (
    LOCK_FILE,
    UTC,
    LockError,
    drop_lock,
    format_time,
    held_message,
    lock_state,
    read_lock,
    require_holder,
    state_mutex,
    take_lock,
    write_lock,
)

SCHEMA = 1
LEDGER_FILE = "ledger.json"
COLORS = ("blue", "green")
KINDS = ("release", "rollback", "contract")
ACTIONS = ("get", "lock", "unlock", "begin", "step", "promote", "rollback", "fail", "retire")
ENDING_ACTIONS = ("promote", "rollback", "fail", "retire")
VERDICTS = ("promote", "hold", "rollback")
MAX_WEIGHT = 256
DEFAULT_HISTORY_LIMIT = 50
APP_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RELEASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]+$")


class LedgerError(Exception):
    """A refusal or an unreadable ledger; details go into the module's failure result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


# ---------------------------------------------------------------------------------------------
# The document


def empty_ledger(app):
    """The ledger of an application never released on this host."""
    return {
        "schema": SCHEMA,
        "app": app,
        "live": None,
        "previous": None,
        "colors": {},
        "weights": {},
        "migrations": {"applied": [], "contracted": [], "last_contract_at": None},
        "releases": [],
        "takeovers": [],
        "updated_at": None,
    }


def _expect(condition, source, what):
    if not condition:
        raise LedgerError(
            f"the ledger {source} is damaged: {what}; it was left as it is - repair it, or move it away to start "
            "from an empty ledger (the live color is then unknown)"
        )


def parse_ledger(text, app, source):
    """The ledger in text (read from source, which messages name), checked and completed."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LedgerError(
            f"the ledger {source} is not valid JSON ({exc}); it was left as it is - repair it, or move it away "
            "to start from an empty ledger (the live color is then unknown)"
        ) from exc
    _expect(isinstance(doc, dict), source, "it is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise LedgerError(
            f"the ledger {source} has schema {doc.get('schema')!r}; this module reads and writes schema {SCHEMA}"
        )
    if doc.get("app") != app:
        raise LedgerError(f"the ledger {source} belongs to app {doc.get('app')!r}, not {app!r}: check the path option")
    ledger = empty_ledger(app)
    for key, value in doc.items():
        if key == "migrations" and isinstance(value, dict):
            ledger["migrations"].update(value)
        else:
            ledger[key] = value
    for key in ("live", "previous"):
        _expect(ledger[key] is None or ledger[key] in COLORS, source, f"{key} is {ledger[key]!r}")
    for key in ("colors", "weights"):
        _expect(isinstance(ledger[key], dict), source, f"{key} is not an object")
    for key in ("releases", "takeovers"):
        _expect(isinstance(ledger[key], list), source, f"{key} is not a list")
    _expect(
        all(isinstance(entry, dict) and "id" in entry for entry in ledger["releases"]),
        source,
        "a release has no id",
    )
    return ledger


def load_ledger(path, app):
    """The ledger in path; a missing file is an empty ledger."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return empty_ledger(app)
    return parse_ledger(text, app, path)


def dump_ledger(ledger):
    return json.dumps(ledger, indent=2, sort_keys=True) + "\n"


def save_ledger(path, ledger):
    write_atomically(path, dump_ledger(ledger), mode=0o600)


def find_release(ledger, release_id):
    for entry in ledger["releases"]:
        if entry["id"] == release_id:
            return entry
    return None


def other_color(color):
    return COLORS[1] if color == COLORS[0] else COLORS[0]


# ---------------------------------------------------------------------------------------------
# Parameters


def _check_pattern(name, value, pattern):
    if not isinstance(value, str) or not pattern.match(value):
        raise LedgerError(f"{name}: {value!r} does not match {pattern.pattern}")


def normalize_weights(weights, where):
    """color -> int 0..256 (values from templates arrive as strings)."""
    if weights is None:
        return None
    if not isinstance(weights, dict):
        raise LedgerError(f"{where}: expected a mapping of color to weight, got {weights!r}")
    normalized = {}
    for color, weight in weights.items():
        if color not in COLORS:
            raise LedgerError(f"{where}: {color!r} is not a color (blue, green)")
        try:
            if isinstance(weight, bool):
                raise ValueError(weight)
            value = int(weight)
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"{where}: the weight of {color} is {weight!r}, not an integer") from exc
        if not 0 <= value <= MAX_WEIGHT:
            raise LedgerError(f"{where}: the weight of {color} is {value}, outside 0..{MAX_WEIGHT}")
        normalized[color] = value
    return normalized


def _normalize_strings(values, where):
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise LedgerError(f"{where}: expected a list of migration names, got {values!r}")
    return [str(v) for v in values]


def normalize_images(images, where="images"):
    if images is None:
        return {}
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise LedgerError(f"{where}: expected a mapping of service to image reference, got {images!r}")
    return dict(images)


def normalize_step(step):
    """The step as stored: its keys as given, the special ones checked and normalized."""
    if not isinstance(step, dict):
        raise LedgerError(f"step: expected a mapping with at least a name, got {step!r}")
    name = step.get("name")
    if not isinstance(name, str) or not name:
        raise LedgerError("step: name is required (a non-empty string)")
    normalized = {key: value for key, value in step.items() if key != "at"}
    if "weights" in step:
        normalized["weights"] = normalize_weights(step["weights"], "step.weights")
    for key in ("migrations_applied", "migrations_contracted"):
        if key in step:
            normalized[key] = _normalize_strings(step[key], f"step.{key}")
    if "verdict" in step:
        verdict = step["verdict"]
        if not isinstance(verdict, dict) or verdict.get("verdict") not in VERDICTS:
            raise LedgerError(
                f"step.verdict: expected a mapping with verdict (one of {', '.join(VERDICTS)}) and reason, "
                f"got {verdict!r}"
            )
        normalized["verdict"] = dict(verdict)
    if "deployed" in step and not isinstance(step["deployed"], bool):
        raise LedgerError(f"step.deployed: expected true or false, got {step['deployed']!r}")
    if step.get("deployed") and "images" in step:
        normalized["images"] = normalize_images(step["images"], "step.images")
    return normalized


def validate_params(params):
    """Check what argument_spec cannot; returns the parameters with weights, images and step normalized."""
    params = dict(params)
    _check_pattern("app", params["app"], APP_PATTERN)
    if params.get("release_id") is not None:
        _check_pattern("release_id", params["release_id"], RELEASE_ID_PATTERN)
    elif params["action"] != "get":
        raise LedgerError(f"release_id is required with action={params['action']}")
    if params.get("lock_ttl", 1) <= 0:
        raise LedgerError(f"lock_ttl: {params['lock_ttl']} is not a positive number of seconds")
    if params.get("history_limit", 1) < 1:
        raise LedgerError(f"history_limit: {params['history_limit']} must be at least 1")
    params["weights"] = normalize_weights(params.get("weights"), "weights")
    params["images"] = normalize_images(params.get("images"))
    if params["action"] == "step":
        params["step"] = normalize_step(params.get("step"))
    if params["action"] == "rollback" and not params.get("color"):
        raise LedgerError(f"color is required with action={params['action']}")
    return params


# ---------------------------------------------------------------------------------------------
# Transitions: each returns a new ledger, or the ledger it was given when nothing changes.


def _stamped(before, after, now):
    if after == before:
        return before
    after["updated_at"] = format_time(now)
    return after


def _require_release(ledger, release_id, action):
    entry = find_release(ledger, release_id)
    if entry is None:
        raise LedgerError(
            f"release {release_id} is not in the ledger of {ledger['app']}: action={action} needs it - "
            "begin it first (action=begin)"
        )
    return entry


def _merge_weights(ledger, weights):
    if weights:
        ledger["weights"].update(weights)


def _trim(items, limit):
    if len(items) > limit:
        del items[: len(items) - limit]


def _deployed_color(entry, now, images=None):
    return {
        "version": entry.get("version"),
        "images": dict(images if images is not None else entry.get("images") or {}),
        "release_id": entry["id"],
        "state": "candidate",
        "deployed_at": format_time(now),
        "promoted_at": None,
        "demoted_at": None,
        "retired_at": None,
    }


def _release_color(entry, color, action):
    if color and entry.get("color") and color != entry["color"]:
        raise LedgerError(
            f"release {entry['id']} deploys {entry['color']}, not {color}: action={action} with color={color} "
            "contradicts it"
        )
    color = color or entry.get("color")
    if not color:
        raise LedgerError(f"release {entry['id']} has no color: give color to action={action}")
    return color


def _ended(entry):
    reason = f" ({entry['reason']})" if entry.get("reason") else ""
    return f"release {entry['id']} ended {entry['outcome']}{reason} at {entry.get('finished_at')}"


def begin(
    ledger,
    release_id,
    now,
    kind="release",
    owner=None,
    version=None,
    color=None,
    from_color=None,
    images=None,
    history_limit=DEFAULT_HISTORY_LIMIT,
):
    """Record a new release (outcome running). An id already in the ledger changes nothing.

    A release (kind release) deploys the idle color unless told otherwise: the color that is not
    live (blue on a first deploy), coming from the live one. A rollback goes to previous, from live.
    Releases still running are marked abandoned: only the lock holder may run.
    """
    if find_release(ledger, release_id) is not None:
        return ledger
    after = copy.deepcopy(ledger)
    live = after["live"]
    if kind == "release":
        color = color or (other_color(live) if live else COLORS[0])
        from_color = from_color or live
        if color == live:
            raise LedgerError(
                f"release {release_id} would deploy {color}, which is live for {after['app']}: "
                f"a release deploys the idle color ({other_color(live)})"
            )
    elif kind == "rollback":
        color = color or after["previous"]
        from_color = from_color or live
    for entry in after["releases"]:
        if entry.get("outcome") == "running":
            entry["outcome"] = "abandoned"
            entry["reason"] = f"still running when release {release_id} began (its lock was released or taken)"
            entry["finished_at"] = format_time(now)
    after["releases"].append(
        {
            "id": release_id,
            "kind": kind,
            "owner": owner,
            "started_at": format_time(now),
            "finished_at": None,
            "version": version,
            "color": color,
            "from_color": from_color,
            "images": dict(images or {}),
            "steps": [],
            "verdicts": [],
            "outcome": "running",
            "reason": None,
        }
    )
    _trim(after["releases"], history_limit)
    return _stamped(ledger, after, now)


def record_step(ledger, release_id, step, now):
    """Record a step of a release. The same name with the same content (ignoring `at`) changes
    nothing; with other content the step is replaced in place. Special keys also change the ledger:
    weights, migrations_applied, migrations_contracted, verdict, deployed (with the step's images,
    when given, as what the color runs - the digests actually deployed)."""
    after = copy.deepcopy(ledger)
    entry = _require_release(after, release_id, "step")
    content = normalize_step(step)
    name = content["name"]
    index = next((i for i, s in enumerate(entry["steps"]) if s.get("name") == name), None)
    if index is not None and {k: v for k, v in entry["steps"][index].items() if k != "at"} == content:
        return ledger
    stored = {"name": name, "at": format_time(now)}
    stored.update(content)
    if index is None:
        entry["steps"].append(stored)
    else:
        entry["steps"][index] = stored

    _merge_weights(after, content.get("weights"))
    migrations = after["migrations"]
    if content.get("migrations_applied"):
        migrations["applied"] = sorted(set(migrations["applied"]) | set(content["migrations_applied"]))
    if content.get("migrations_contracted"):
        migrations["contracted"] = sorted(set(migrations["contracted"]) | set(content["migrations_contracted"]))
        migrations["last_contract_at"] = format_time(now)
    if "verdict" in content:
        entry["verdicts"] = [v for v in entry["verdicts"] if v.get("step") != name]
        verdict = {"step": name, "verdict": content["verdict"]["verdict"], "reason": content["verdict"].get("reason")}
        verdict.update({k: v for k, v in content["verdict"].items() if k not in verdict})
        entry["verdicts"].append(verdict)
    if content.get("deployed"):
        color = entry.get("color")
        if not color:
            raise LedgerError(
                f"step {name}: release {release_id} has no color, so no color can be recorded as deployed"
            )
        if color == after["live"]:
            raise LedgerError(
                f"step {name}: release {release_id} deploys {color}, which is live: refusing to record it"
            )
        after["colors"][color] = _deployed_color(entry, now, content.get("images"))
        if after["previous"] == color:
            # Its old version is gone: it is no longer something to roll back to.
            after["previous"] = None
    return _stamped(ledger, after, now)


def promote(ledger, release_id, now, color=None, weights=None):
    """The release's color becomes live; the old live color becomes previous, on standby."""
    after = copy.deepcopy(ledger)
    entry = _require_release(after, release_id, "promote")
    color = _release_color(entry, color, "promote")
    if entry["outcome"] != "promoted":
        if entry["outcome"] != "running":
            raise LedgerError(f"{_ended(entry)}; it cannot be promoted - begin a new release")
        stamp = format_time(now)
        old_live = after["live"]
        if old_live != color:
            if old_live:
                after["previous"] = old_live
                demoted = after["colors"].get(old_live)
                if demoted is not None:
                    demoted["state"] = "standby"
                    demoted["demoted_at"] = stamp
            after["live"] = color
        current = after["colors"].get(color)
        if current is None or (entry["kind"] == "release" and current.get("release_id") != release_id):
            current = after["colors"][color] = _deployed_color(entry, now)
        if current.get("state") != "live":
            current["state"] = "live"
            current["promoted_at"] = stamp
        entry["color"] = color
        entry["outcome"] = "promoted"
        entry["finished_at"] = stamp
    _merge_weights(after, weights)
    return _stamped(ledger, after, now)


def rollback(ledger, release_id, color, now, reason=None, weights=None):
    """Traffic ends on color: the live color (the release's color failed before taking traffic),
    or previous (live and previous swap). Outcome rolled_back, or done for a kind=rollback release."""
    after = copy.deepcopy(ledger)
    entry = _require_release(after, release_id, "rollback")
    if entry["outcome"] not in ("rolled_back", "done"):
        if entry["outcome"] == "abandoned":
            raise LedgerError(f"{_ended(entry)}; it cannot be rolled back - another release owns {after['app']} now")
        stamp = format_time(now)
        live, previous = after["live"], after["previous"]
        if color == live:
            failed = after["colors"].get(entry.get("color"))
            if entry.get("color") != live and failed is not None and failed.get("release_id") == release_id:
                failed["state"] = "failed"
        elif color == previous:
            target = after["colors"].get(color)
            if target is None:
                raise LedgerError(f"the ledger of {after['app']} names {color} as previous but has no record of it")
            target["state"] = "live"
            target["promoted_at"] = stamp
            demoted = after["colors"].get(live)
            if demoted is not None:
                demoted["state"] = "standby"
                demoted["demoted_at"] = stamp
            after["live"], after["previous"] = color, live
        else:
            record = after["colors"].get(color) or {}
            why = (
                f"; {color} was retired at {record.get('retired_at')} by a contract"
                if record.get("state") == "retired"
                else ""
            )
            raise LedgerError(
                f"cannot roll {after['app']} back to {color}: it is neither live ({live}) "
                f"nor previous ({previous}){why}"
            )
        entry["outcome"] = "done" if entry["kind"] == "rollback" else "rolled_back"
        entry["reason"] = reason
        entry["finished_at"] = stamp
    _merge_weights(after, weights)
    return _stamped(ledger, after, now)


def fail(ledger, release_id, now, reason=None, weights=None):
    """The release failed; live does not change. A release that already ended otherwise than
    promoted is left as it is; a promoted one is refused (that is a rollback)."""
    after = copy.deepcopy(ledger)
    entry = _require_release(after, release_id, "fail")
    if entry["outcome"] == "promoted":
        raise LedgerError(f"{_ended(entry)}; to take traffic back from it use action=rollback")
    if entry["outcome"] in ("rolled_back", "done", "abandoned"):
        return ledger
    if entry["outcome"] == "running":
        entry["outcome"] = "failed"
        entry["reason"] = reason
        entry["finished_at"] = format_time(now)
        record = after["colors"].get(entry.get("color"))
        if record is not None and record.get("state") == "candidate" and record.get("release_id") == release_id:
            record["state"] = "failed"
    _merge_weights(after, weights)
    return _stamped(ledger, after, now)


def retire(ledger, release_id, color, now, weights=None):
    """color is retired (a contract made its code incompatible): no longer previous, no rollback to it.

    color defaults to the release's color; a contract with neither (no old color left) only ends.
    """
    after = copy.deepcopy(ledger)
    entry = _require_release(after, release_id, "retire")
    color = _release_color(entry, color, "retire") if color or entry.get("color") else None
    if color:
        record = after["colors"].get(color)
        if record is None:
            raise LedgerError(f"{color} is not in the ledger of {after['app']}: there is nothing to retire")
        if color == after["live"]:
            raise LedgerError(f"cannot retire {color}: it is the live color of {after['app']}")
        if record.get("state") != "retired":
            record["state"] = "retired"
            record["retired_at"] = format_time(now)
        if after["previous"] == color:
            after["previous"] = None
    if entry["outcome"] == "running":
        entry["outcome"] = "done"
        entry["finished_at"] = format_time(now)
    _merge_weights(after, weights)
    return _stamped(ledger, after, now)


def record_takeover(ledger, takeover, now, history_limit=DEFAULT_HISTORY_LIMIT):
    """Append the take-over, and mark the release that lost its lock abandoned if it was running."""
    after = copy.deepcopy(ledger)
    after["takeovers"].append(dict(takeover))
    _trim(after["takeovers"], history_limit)
    lost = find_release(after, takeover["previous_release_id"])
    if lost is not None and lost.get("outcome") == "running":
        who = f"{takeover['by']} (release {takeover['release_id']})"
        lost["outcome"] = "abandoned"
        lost["reason"] = (
            f"lock taken over with force by {who} before it expired"
            if takeover.get("forced")
            else f"lock expired, taken over by {who}"
        )
        lost["finished_at"] = format_time(now)
    return _stamped(ledger, after, now)


# ---------------------------------------------------------------------------------------------
# Actions


def apply_action(ledger, lock, params, now, host, pid):
    """The ledger and the lock after params["action"], and what the module returns.

    Pure: nothing is read or written. Raises LedgerError or LockError on refusal.
    """
    action, app, release_id = params["action"], params["app"], params.get("release_id")
    new_ledger, new_lock, takeover = ledger, lock, None
    force = params.get("force", False)
    limit = params.get("history_limit", DEFAULT_HISTORY_LIMIT)
    if action == "lock":
        new_lock, takeover = take_lock(
            lock, app, release_id, params["owner"], params["lock_ttl"], now, host, pid, force=force
        )
        if takeover:
            new_ledger = record_takeover(ledger, takeover, now, limit)
    elif action == "unlock":
        new_lock = drop_lock(lock, app, release_id, force=force)
    elif action == "begin":
        require_holder(lock, app, release_id, action, now)
        new_ledger = begin(
            ledger,
            release_id,
            now,
            kind=params.get("kind") or "release",
            owner=params["owner"],
            version=params.get("version"),
            color=params.get("color"),
            from_color=params.get("from_color"),
            images=params.get("images"),
            history_limit=limit,
        )
    elif action == "step":
        require_holder(lock, app, release_id, action, now)
        new_ledger = record_step(ledger, release_id, params["step"], now)
    elif action in ENDING_ACTIONS:
        weights = params.get("weights")
        if action == "promote":
            new_ledger = promote(ledger, release_id, now, color=params.get("color"), weights=weights)
        elif action == "rollback":
            new_ledger = rollback(
                ledger, release_id, params["color"], now, reason=params.get("reason"), weights=weights
            )
        elif action == "fail":
            new_ledger = fail(ledger, release_id, now, reason=params.get("reason"), weights=weights)
        else:
            new_ledger = retire(ledger, release_id, params.get("color"), now, weights=weights)
        if new_ledger is not ledger and lock is not None and lock["release_id"] != release_id and not force:
            raise LockError(
                f"{held_message(app, lock)}: release {release_id} does not hold it (see the ledger's takeovers), "
                f"so action={action} would change the ledger under another release's lock - refused "
                "(force=true overrides)",
                lock=lock,
                lock_state=lock_state(lock, now),
            )
        if params.get("unlock", True) and lock is not None and lock["release_id"] == release_id:
            new_lock = None
    elif action != "get":
        raise LedgerError(f"action: unknown action {action!r}")
    return {
        "changed": new_ledger != ledger or new_lock != lock,
        "ledger": new_ledger,
        "lock": new_lock,
        "lock_state": lock_state(new_lock, now),
        "release": find_release(new_ledger, release_id) if release_id else None,
        "takeover": takeover,
    }


def utc_now():
    return datetime.now(UTC)


def make_state_directory(directory):
    """Create directory 0700 (its parents 0755) when missing."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)


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
            # A refusal still says what is there.
            exc.details.setdefault("lock", before_lock)
            exc.details.setdefault("lock_state", lock_state(before_lock, now))
            exc.details.setdefault("ledger", before_ledger)
            rid = params.get("release_id")
            exc.details.setdefault("release", find_release(before_ledger, rid) if rid else None)
            raise
        result["before"] = {"ledger": before_ledger, "lock": before_lock}
        return result

    read_only = check_mode or params["action"] == "get"
    try:
        exists = os.path.isdir(directory)
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
        return result
    except OSError as exc:
        raise LedgerError(f"cannot use the state directory {directory} of {params['app']}: {exc}") from exc
