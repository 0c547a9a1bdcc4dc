# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ledger's state machine: each transition takes a ledger and returns a new one (the same object
when there is nothing to do). Pure: the time comes in as an argument, nothing is read or written."""

from __future__ import annotations

import copy

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import format_time
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import (
    COLORS,
    DEFAULT_HISTORY_LIMIT,
    LedgerError,
    find_release,
    other_color,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.params import normalize_step


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
    strategy=None,
    experiment=None,
):
    """Record a new release (outcome running). An id already in the ledger changes nothing.

    A release (kind release) deploys the idle color unless told otherwise: the color that is not
    live (blue on a first deploy), coming from the live one. A rollback goes to previous, from live.
    Releases still running are marked abandoned: only the lock holder may run. A recreate (strategy recreate)
    deploys the live color itself (there is no second color), behind the maintenance page.
    """
    if find_release(ledger, release_id) is not None:
        return ledger
    after = copy.deepcopy(ledger)
    live = after["live"]
    if kind == "release":
        in_place = strategy == "recreate" and bool(live)
        color = color or (live if in_place else other_color(live) if live else COLORS[0])
        from_color = from_color or live
        if color == live and not in_place:
            raise LedgerError(
                f"release {release_id} would deploy {color}, which is live for {after['app']}: "
                f"a release deploys the idle color ({other_color(live)})"
            )
    elif kind == "rollback":
        color = color or after["previous"]
        from_color = from_color or live
    elif kind == "contract" and color and color == live:
        # The plan saw it as the old color; a rollback made it live since: retiring it would stop the live code.
        raise LedgerError(
            f"contract {release_id} would retire {color}, which is live for {after['app']} now (a rollback since "
            "the plan?): refused - run contract.yml again"
        )
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
            **({"strategy": strategy} if strategy else {}),
        }
    )
    if kind == "release" and experiment:
        after["releases"][-1]["experiment"] = dict(experiment)
    _trim(after["releases"], history_limit)
    return _stamped(ledger, after, now)


def in_place(entry):
    """A recreate: the release replaces the live color's containers (behind the maintenance page)."""
    return entry.get("strategy") == "recreate"


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
    times = ("at", "updated_at")
    if index is not None and {k: v for k, v in entry["steps"][index].items() if k not in times} == content:
        return ledger
    stored = {"name": name, "at": format_time(now)}
    if index is not None:
        # The step happened when it was first recorded (a canary step's shift); later records (its
        # verdict) say when they came.
        stored = {"name": name, "at": entry["steps"][index]["at"], "updated_at": format_time(now)}
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
    if content.get("deploying"):
        # The candidate's containers are about to be replaced: from now on the color no longer runs what the
        # ledger said (a previous version kept for rollback is gone, even if the deploy then fails).
        color = entry.get("color")
        if not color or (color == after["live"] and not in_place(entry)):
            raise LedgerError(f"step {name}: release {release_id} has no idle color to deploy ({color or 'none'})")
        record = after["colors"].get(color)
        if record is None or record.get("release_id") != release_id:
            if in_place(entry) and record is not None:
                # What the color ran, whole: a recreate that fails before its stop puts it back (fail, untouched).
                entry["replaced_record"] = copy.deepcopy(record)
            after["colors"][color] = {**_deployed_color(entry, now), "state": "deploying"}
        if after["previous"] == color:
            after["previous"] = None
    if content.get("deployed"):
        color = entry.get("color")
        if not color:
            raise LedgerError(
                f"step {name}: release {release_id} has no color, so no color can be recorded as deployed"
            )
        if color == after["live"] and not in_place(entry):
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


def fail(ledger, release_id, now, reason=None, weights=None, untouched=False):
    """The release failed; live does not change. A release that already ended otherwise than
    promoted is left as it is; a promoted one is refused (that is a rollback).

    untouched: a recreate that failed before its stop began - the color still runs what it ran, so its record
    goes back to what the stop step replaced (not `failed` with a version that never ran there)."""
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
        if (
            record is not None
            and record.get("state") in ("candidate", "deploying")
            and record.get("release_id") == release_id
        ):
            if untouched and in_place(entry) and entry.get("replaced_record"):
                after["colors"][entry["color"]] = copy.deepcopy(entry["replaced_record"])
            else:
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


def record_drill(ledger, drill, now, history_limit=DEFAULT_HISTORY_LIMIT):
    """Record a rollback drill in the ledger's drills (its own list: drills never push releases out of the
    history, and change neither live, previous, the colors nor the weights - the traffic is back where it
    was). The same id again replaces its record (a re-run of the same write changes nothing)."""
    after = copy.deepcopy(ledger)
    drills = after.setdefault("drills", [])
    stored = {**drill, "recorded_at": format_time(now)}
    index = next((i for i, d in enumerate(drills) if d.get("id") == drill["id"]), None)
    if index is not None:
        if {k: v for k, v in drills[index].items() if k != "recorded_at"} == drill:
            return ledger
        drills[index] = stored
    else:
        drills.append(stored)
    _trim(drills, history_limit)
    return _stamped(ledger, after, now)
