# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release, a rollback, a contract or a rollback drill would do, decided from the ledger alone.

Pure functions: the ledger, the lock's state, the time and the operator's request come in; a plan
comes out, with `refused` set to the reason when the operation must not run. The roles act on the
plan (release_state action=plan returns it) instead of deriving colors, steps and permissions in
Jinja, and each case has its unit test.
"""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.common.clock import (
    UTC,
    format_time,
    from_epoch,
    parse_time,
)
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import MAX_WEIGHT
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import COLORS, LedgerError, other_color
from ansible_collections.switchyard.release.plugins.module_utils.release.weights import canary_weights

# How a release moves traffic to the new version (docs/strategies.md).
STRATEGIES = ("canary", "bluegreen", "recreate", "ab")


# Why switchyard_stop_after_step (a canary's pause) does not apply to the other strategies.
STRATEGY_PAUSES = {"bluegreen": "switches once", "recreate": "recreates the live color in place"}


def check_strategy(strategy):
    """The strategy, or LedgerError naming switchyard_strategy and the allowed values (before anything changes)."""
    if strategy not in STRATEGIES:
        raise LedgerError(
            f"switchyard_strategy={strategy!r} is not a strategy: allowed values are {', '.join(STRATEGIES)}"
        )
    return strategy


def failed_recreate(ledger):
    """The last release when it was a recreate that failed on the live color (its old version is gone, the maintenance
    page is up), else None."""
    last = last_release(ledger)
    live = ledger.get("live")
    record = (ledger.get("colors") or {}).get(live) or {}
    # Only once its containers were replaced: a recreate that failed before the stop left the old version serving.
    replaced = record.get("release_id") == last.get("id") and record.get("state") != "live"
    ended_badly = last.get("outcome") in ("failed", "abandoned")
    if last.get("strategy") == "recreate" and ended_badly and last.get("color") == live and replaced:
        return last
    return None


def last_release(ledger, kind="release"):
    """The ledger's last entry of that kind, or {}."""
    entries = [r for r in ledger.get("releases") or [] if r.get("kind") == kind]
    return entries[-1] if entries else {}


def paused_after(entry, lock_state):
    """The percentage a release stopped at for an approval, or None: running, its last step is the
    pause, and nobody holds the lock (a run that holds it is still moving)."""
    steps = entry.get("steps") or []
    if entry.get("outcome") == "running" and steps and is_pause(steps[-1]) and lock_state != "held":
        return int(steps[-1].get("after") or 0)
    return None


def is_pause(step):
    """A pause step: pause-<percent> (each pause of a release is its own step), or pause."""
    name = str(step.get("name") or "")
    return name == "pause" or name.startswith("pause-")


def release_id(now, suffix, kind=None):
    """20261126T170000Z-1a2b, or 20261126T170000Z-rollback-1a2b."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{kind}-{suffix}" if kind else f"{stamp}-{suffix}"


def entry_strategy(entry):
    """The strategy a ledger entry was released with (entries older than strategies were canaries)."""
    return entry.get("strategy") or "canary"


def strategy_steps(strategy, live, canary_steps, done, stop, ab_percent, ab_promote):
    """(steps, pause_after, judged) of a strategy: the shares to move to in order, the share to stop at for an
    approval (None: go on to the promotion), and the shares the gate judges.

    - canary: the steps after done, up to stop; every step below 100 judged;
    - bluegreen: one switch of 100 %, judged (the previous color, kept warm, is the baseline);
    - ab: the experiment's share, judged and then left running (paused) until a run promotes it;
    - a first release (nothing live): 100 % at once, nothing to judge against.
    """
    if not live:
        return [100], None, []
    if strategy == "bluegreen":
        return [100], None, [100]
    if strategy == "ab":
        if ab_promote:
            return [100], None, []
        return [ab_percent], ab_percent, [ab_percent]
    steps = [int(s) for s in canary_steps if done < int(s) <= stop]
    return steps, (stop if stop < 100 else None), [s for s in steps if s < 100]


def strategy_refusal(strategy, app, last, paused, stop_after_step, ab_percent, ab_promote, ab_key):
    """Why the strategy's own parameters cannot run as asked, or None."""
    running_ab = paused is not None and entry_strategy(last) == "ab"
    if strategy != "canary" and stop_after_step not in (None, ""):
        return (
            f"switchyard_stop_after_step={stop_after_step} pauses a canary; the {strategy} strategy "
            f"{STRATEGY_PAUSES.get(strategy, 'pauses at its share by itself')}: leave it empty"
        )
    if strategy == "ab" and not (isinstance(ab_percent, int) and 1 <= ab_percent <= 99):
        return f"switchyard_ab_percent={ab_percent!r}: the share of users on variant B, an integer from 1 to 99"
    if strategy == "ab" and not ab_key:
        return (
            "switchyard_strategy=ab keeps each user on one variant by the LB's sticky cookie, and "
            "switchyard_lb_sticky_cookie is empty: set it (e.g. SWITCHYARD_VARIANT)"
        )
    if ab_promote and not running_ab:
        return (
            f"switchyard_ab_promote=true promotes a running A/B experiment, and {app} has none: "
            "start one with switchyard_strategy=ab"
        )
    return None


def resume_refusal(app, last, paused, strategy, ab_percent, ab_key):
    """Why this run cannot resume the paused release last as asked, or None. The role always passes a strategy
    (canary by default), so canary is taken as "not asked"; anything else must be the release's own."""
    began = entry_strategy(last)
    if strategy != "canary" and strategy != began:
        return (
            f"Release {last['id']} of {app} {last.get('version')} is paused with the {began} strategy; this run asks "
            f"for switchyard_strategy={strategy}. A release keeps the strategy it began with: run again without "
            f"switchyard_strategy (or with {began}), or undo it with playbooks/rollback.yml."
        )
    if began != "ab":
        return None
    experiment = last.get("experiment") or {}
    if strategy == "ab" and ab_percent is not None and ab_percent != paused:
        return (
            f"The A/B experiment {last['id']} of {app} runs with {paused} % of users on B; this run asks for "
            f"switchyard_ab_percent={ab_percent}. Its share does not change while it runs: run without "
            "switchyard_ab_percent (or with the same), or end it (switchyard_ab_promote=true, or rollback.yml) first."
        )
    if experiment.get("key") and ab_key != experiment["key"]:
        now = ab_key or "no sticky cookie"
        return (
            f"The A/B experiment {last['id']} of {app} keeps each user on a variant by {experiment['key']}; this run "
            f"has {now} (switchyard_lb_sticky_cookie): the LB would be configured with it and users would change "
            f"variant. Run with switchyard_lb_sticky_cookie={experiment['key'].split(' ', 1)[-1]}."
        )
    return None


def plan_release(
    ledger,
    lock_state,
    version,
    canary_steps,
    new_id,
    stop_after_step=None,
    migrations_level=0,
    strategy="canary",
    ab_percent=None,
    ab_promote=False,
    ab_key="",
):
    """The release of version: colors, the steps left, resume or not, and whether it must not run.

    - first release: blue, one step of 100 %;
    - the live color already runs version (and no release is unfinished): noop;
    - a release paused for an approval: the same version resumes after its last step, another
      version is refused; it goes on with the strategy it began with (an A/B experiment: observed
      again at its share, or promoted with ab_promote);
    - a release killed while it held the lock: not resumed; its lock decides (refused while valid,
      taken over once expired, and the killed release is then abandoned).

    strategy recreate (with a live color): no second color - the live color is recreated with the new version behind
    the maintenance page (plan["recreate"] says what would happen); after a failed recreate only a recreate may run.
    """
    check_strategy(strategy)
    version = str(version)
    live = ledger.get("live") or None
    colors = ledger.get("colors") or {}
    last = last_release(ledger)
    paused = paused_after(last, lock_state)
    resumed_refusal = None
    if paused is not None and str(last.get("version")) == version:
        # A resumed release keeps its strategy and its experiment's share, whatever this run's defaults say; what
        # this run asks for explicitly must agree with them.
        resumed_refusal = resume_refusal(ledger.get("app"), last, paused, strategy, ab_percent, ab_key)
        strategy = entry_strategy(last)
        if strategy == "ab":
            ab_percent, stop_after_step = paused, None
            ab_key = (last.get("experiment") or {}).get("key") or ab_key
    noop = bool(
        paused is None
        and live
        and str((colors.get(live) or {}).get("version") or "") == version
        # A live color whose recreate failed runs nothing (its record names the version that failed).
        and (colors.get(live) or {}).get("state", "live") == "live"
        and last.get("outcome") != "running"
    )
    plan = {
        "kind": "release",
        "version": version,
        "strategy": strategy,
        "live": live or "",
        "resume": paused is not None,
        "noop": False,
        # A promotion asked again once done (an AWX retry) is a no-op, not a refusal.
        "refused": resumed_refusal
        or strategy_refusal(
            strategy,
            ledger.get("app"),
            last,
            paused,
            stop_after_step,
            ab_percent,
            bool(ab_promote) and not noop,
            ab_key,
        ),
        "abandons": None,
        "migrations_level": int(migrations_level or 0),
    }
    if plan["refused"]:
        strategy = "canary"  # planned as a canary only so that the plan stays whole; it is refused
    if paused is not None and str(last.get("version")) != version:
        if entry_strategy(last) == "ab":
            plan["refused"] = (
                f"An A/B experiment of {ledger['app']} is running: release {last['id']}, variant B "
                f"{last.get('version')} on {last.get('color')} for {paused} % of users. End it first - promote B with "
                f"-e switchyard_version={last.get('version')} -e switchyard_ab_promote=true, or keep A with "
                f"playbooks/rollback.yml - before releasing {version}."
            )
        else:
            plan["refused"] = (
                f"Release {last['id']} of {ledger['app']} {last.get('version')} is paused after the {paused} % step "
                f"(candidate {last.get('color')}). Resume it with -e switchyard_version={last.get('version')}, or undo "
                f"it with playbooks/rollback.yml, before releasing {version}."
            )
    if paused is not None:
        plan["id"], candidate, done = last["id"], last.get("color"), paused
    else:
        plan["id"], candidate, done = new_id, other_color(live) if live else COLORS[0], 0
        if last.get("outcome") == "running":
            plan["abandons"] = last["id"]
    stop = int(stop_after_step) if stop_after_step not in (None, "") else 100
    steps, pause_after, judged = strategy_steps(strategy, live, canary_steps, done, stop, ab_percent, bool(ab_promote))
    plan.update(
        candidate=candidate,
        steps=steps,
        judged_steps=judged,
        # A/B: the gate's hold (not enough data yet) keeps the experiment running; only a failing variant ends it.
        hold_keeps_going=strategy == "ab",
        experiment={"share": ab_percent, "key": ab_key} if strategy == "ab" and live else None,
        resume_after_step=done if paused is not None else None,
        # A resumed release verifies and keeps the digests its candidate runs (every service, as deployed), or
        # those it began with: a tag moved since changes nothing.
        resume_images=resume_images(last, colors.get(candidate)) if paused is not None else {},
        pause_after=pause_after,
        # A list, in step order: a mapping keyed by percent is shown sorted as strings (10, 100, 25, 50).
        weights_per_step=[{"step": s, "weights": canary_weights(s, live, candidate)} for s in steps],
        final_weights=canary_weights(100, live, candidate),
    )
    plan["noop"] = noop
    plan["recreate"] = None
    broken = failed_recreate(ledger)
    if broken and strategy != "recreate" and not plan["refused"]:
        plan["refused"] = (
            f"Release {broken['id']} recreated {live} with {broken.get('version')} and failed: the old version's "
            f"containers are gone and {live} answers the maintenance page. Release a good version with "
            "-e switchyard_strategy=recreate (it recreates the color again and resumes traffic), or run "
            "playbooks/rollback.yml for what it can do."
        )
    if strategy == "recreate" and live:
        if paused is not None and not plan["refused"]:
            plan["refused"] = (
                f"Release {last['id']} ({entry_strategy(last)}) is paused after the {paused} % step: finish it "
                f"(release.yml with switchyard_version={last.get('version')}) or undo it (rollback.yml) before a "
                "recreate."
            )
        plan.update(recreate_plan(ledger, live, version), candidate=live, steps=[], weights_per_step=[])
        plan.update(judged_steps=[], final_weights={live: 256, other_color(live): 0}, pause_after=None)
    return plan


def recreate_plan(ledger, color, version):
    """What a recreate of color does, in order (for the plan, --check and the ledger)."""
    record = (ledger.get("colors") or {}).get(color) or {}
    app = ledger.get("app")
    replaced = {k: record.get(k) for k in ("version", "images", "release_id", "state")}
    return {
        "recreate": {
            "color": color,
            "project": f"{app}-{color}",
            "replaces": replaced,
            "actions": [
                f"stage {version} beside {app}-{color} (its files in {color}.staged/, its images pulled) while "
                f"{replaced.get('version') or 'it'} still serves",
                f"maintenance page on (HTTP 503 with Retry-After) on every route of {app}, checked through the LB",
                f"stop {app}-{color} ({replaced.get('version') or 'nothing running'})",
                f"start {app}-{color} with {version} (the staged files put in place) and wait until healthy (its "
                "servers UP on the LB)",
                "maintenance page off: traffic resumes on it, checked through the LB",
            ],
        }
    }


def resume_images(entry, color):
    """The images of a paused release: what its candidate color runs when this release deployed it."""
    if isinstance(color, dict) and color.get("release_id") == entry.get("id") and color.get("images"):
        return dict(color["images"])
    return dict(entry.get("images") or {})


def rolled_back_since(ledger, entry):
    """Whether a rollback ended (done) after entry in the ledger's history."""
    entries = ledger.get("releases") or []
    later = entries[entries.index(entry) + 1 :] if entry in entries else []
    return any(r.get("kind") == "rollback" and r.get("outcome") == "done" for r in later)


def plan_rollback(ledger, new_id, force=False):
    """Where a rollback sends the traffic, and whether it may.

    - a release left unfinished (paused at a canary step, or killed): back to the live color, the
      candidate out (mode canary);
    - otherwise the last promotion undone: back to the previous color (mode previous);
    - refused with nothing to go back to, when the previous color was retired by a contract, or
      when contract migrations ran after it left (unless force).
    """
    live = ledger.get("live") or ""
    colors = ledger.get("colors") or {}
    last = last_release(ledger)
    weights = ledger.get("weights") or {}
    # A release that never finished: running (paused, killed), abandoned (its lock was taken over - by
    # this very rollback's forced lock, say) and not rolled back since, or failed with traffic still on
    # its candidate (its restore failed too: the ledger kept the last step's weights).
    restore_failed = any(s.get("name") == "restore" and s.get("failed") for s in last.get("steps") or [])
    stranded = (
        last.get("outcome") == "failed"
        and last.get("color") != live
        and (weights.get(last.get("color"), 0) > 0 or restore_failed)
    )
    abandoned = last.get("outcome") == "abandoned" and not rolled_back_since(ledger, last)
    unfinished = (last.get("outcome") == "running" or abandoned or stranded) and bool(live)
    previous = ledger.get("previous") or ""
    prev_state = colors.get(previous) or {} if previous else {}
    retry = last_release(ledger, "rollback")
    if retry.get("outcome") == "failed" and retry is (ledger.get("releases") or [{}])[-1] and retry.get("color"):
        # The last rollback could not move the traffic: the next one finishes it, to the same color.
        return {
            "kind": "rollback",
            "id": new_id,
            "mode": "retry",
            "to": retry["color"],
            "away": retry.get("from_color") or other_color(retry["color"]),
            "version": retry.get("version"),
            "refused": None,
            "undoes": retry["id"],
            "weights": {retry["color"]: 256, retry.get("from_color") or other_color(retry["color"]): 0},
        }
    recreated = recreated_in_place(ledger, last)
    if recreated:
        return refuse_recreated(ledger, new_id, last, recreated)
    plan = {
        "kind": "rollback",
        "id": new_id,
        "mode": "canary" if unfinished else ("previous" if previous else "none"),
        "to": live if unfinished else previous,
        "away": (last.get("color") or "") if unfinished else live,
        "version": (colors.get(live) or {}).get("version") if unfinished else prev_state.get("version"),
        "refused": None,
    }
    plan["undoes"] = last.get("id") if unfinished else (colors.get(live) or {}).get("release_id")
    last_contract = (ledger.get("migrations") or {}).get("last_contract_at")
    contracted_since = (not unfinished) and bool(last_contract) and last_contract > (prev_state.get("demoted_at") or "")
    app = ledger.get("app")
    if plan["mode"] == "none":
        plan["refused"] = f"Nothing to roll back for {app}: the ledger has no previous color."
    elif prev_state.get("state") == "retired":
        plan["refused"] = f"Rollback of {app} to {plan['to']} refused: that color was retired by a contract."
    elif contracted_since and not force:
        plan["refused"] = (
            f"Rollback of {app} to {plan['to']} refused: contract migrations ran after it left, so its code may not "
            "work on the current schema. Set switchyard_force_rollback=true to roll back anyway."
        )
    plan["weights"] = {plan["to"]: 256, plan["away"]: 0} if plan["refused"] is None and plan["away"] else None
    return plan


def recreated_in_place(ledger, last):
    """What the last release's recreate replaced on the live color ({version, images, ...}), when the last release
    recreated the live color in place (promoted, or failed behind the maintenance page); else None."""
    live = ledger.get("live")
    if last.get("strategy") != "recreate" or not live or last.get("color") != live:
        return None
    if ((ledger.get("colors") or {}).get(live) or {}).get("release_id") != last.get("id"):
        return None  # it failed before the live color was touched: the old version still serves
    stop = next((s for s in last.get("steps") or [] if s.get("name") == "stop"), None)
    return (stop or {}).get("replaced") or {"version": None, "images": {}}


def refuse_recreated(ledger, new_id, last, replaced):
    """A rollback after a recreate: no color still runs the replaced version (it was stopped and its containers
    recreated), so switching colors cannot undo it - a recreate with the replaced images does. Refused, saying how."""
    app, color = ledger.get("app"), last.get("color")
    version, images = replaced.get("version"), replaced.get("images") or {}
    how = (
        f"ansible-playbook playbooks/release.yml -e switchyard_strategy=recreate -e switchyard_version={version} "
        f"-e '{json.dumps({'switchyard_images': images}, sort_keys=True)}'"
        if version and images
        else "release.yml with -e switchyard_strategy=recreate and a good version"
    )
    state = "failed, behind the maintenance page" if last.get("outcome") != "promoted" else "promoted"
    return {
        "kind": "rollback",
        "id": new_id,
        "mode": "recreate",
        "to": color,
        "away": color,
        "version": version,
        "images": images,
        "undoes": last.get("id"),
        "weights": None,
        "refused": (
            f"Rollback of {app} refused: release {last.get('id')} recreated {color} in place with "
            f"{last.get('version')} ({state}), so no color still runs {version or 'the version before it'} - there is "
            f"nothing warm to switch back to. Recreate the previous version on {color} (its digests, as the ledger "
            f"recorded them): {how}"
        ),
    }


def live_schema_level(ledger):
    """The migrations level the live color was promoted with ('' when the ledger does not say)."""
    live = ledger.get("live")
    if not live:
        return ""
    release = (ledger.get("colors") or {}).get(live, {}).get("release_id")
    levels = [
        s.get("migrations_level")
        for r in ledger.get("releases") or []
        if r.get("id") == release
        for s in r.get("steps") or []
        if s.get("name") == "promote" and s.get("migrations_level") not in (None, "")
    ]
    return str(levels[-1]) if levels else ""


def idle_color(ledger):
    """The color that is not live, when the ledger still has it deployed (not retired): the previous
    color on standby, or a candidate that never became live (failed, rolled back, abandoned). Either
    runs code that a contract may break, so a contract retires it; '' when there is none."""
    live = ledger.get("live") or ""
    colors = ledger.get("colors") or {}
    for color in COLORS:
        if color != live and color in colors and (colors[color] or {}).get("state") != "retired":
            return color
    return ""


def plan_contract(ledger, now, new_id, rollback_window, migrations=True):
    """Which color a contract retires, up to which schema level, and whether it may run now.

    The color retired is every color but the live one that is still deployed (idle_color): a contract
    must never leave running code whose schema it removes. Refused during an unfinished release,
    without the live color's schema level (when there are migrations), and inside the rollback window
    of the previous color (a candidate that never was live has no window).
    """
    colors = ledger.get("colors") or {}
    old = idle_color(ledger)
    demoted = (colors.get(old) or {}).get("demoted_at") or "" if old else ""
    window_ends = parse_time(demoted).timestamp() + float(rollback_window) if demoted else 0
    live = ledger.get("live") or ""
    app = ledger.get("app")
    plan = {
        "kind": "contract",
        "id": new_id,
        "live": live,
        "old": old,
        "demoted_at": demoted,
        "window_ends": format_time(from_epoch(window_ends)) if demoted else "",
        "level": live_schema_level(ledger),
        "old_state": (colors.get(old) or {}).get("state") or "" if old else "",
        "old_version": (colors.get(old) or {}).get("version") or "" if old else "",
        "unfinished": last_release(ledger).get("outcome") == "running",
        "refused": None,
    }
    if plan["unfinished"]:
        plan["refused"] = (
            f"A release of {app} is unfinished (paused or interrupted): finish it (release.yml) or undo it "
            "(rollback.yml) before contract.yml."
        )
    elif migrations and not plan["level"]:
        plan["refused"] = (
            f"Contract refused: the ledger does not say which migrations the live color ({live or 'none'}) was "
            "promoted with, so contract migrations could remove what it still uses. Release it with release.yml first."
        )
    elif old and now.timestamp() < window_ends:
        plan["refused"] = (
            f"Contract refused: {old} left at {demoted} and stays ready for rollback until {plan['window_ends']} "
            f"(switchyard_rollback_window={rollback_window} s)."
        )
    return plan


def left_by_rollback(ledger, color):
    """The ledger entry that took the traffic away from color by a rollback (or a release of it that failed or was
    rolled back), when that is the last thing that happened to color; else None. Scanned from the newest entry: a
    promotion of color since clears it."""
    for entry in reversed(ledger.get("releases") or []):
        kind, outcome = entry.get("kind"), entry.get("outcome")
        if kind == "rollback" and outcome == "done" and entry.get("from_color") == color:
            return entry
        if kind == "release" and entry.get("color") == color:
            return entry if outcome in ("rolled_back", "failed") else None
    return None


def plan_drill(ledger, lock_state, new_id, percent=10, full=False, after_rollback=False):
    """Where a rollback drill sends a share of the traffic, and whether it may - by the rollback's own rules
    (plan_rollback), so a drill rehearses exactly the rollback that would run now.

    The target is the rollback's: the previous color (mode previous). Refused while a release is unfinished
    (running, paused, killed: the rollback would undo it, not rehearse), after a failed rollback (retry),
    while another run holds the lock, and wherever the rollback itself is refused (no previous color, retired
    by a contract, contract migrations since it left - a drill is never forced). Also refused, unless
    after_rollback, when the target was left by a rollback (or its release failed): its version is the one an
    incident took out of traffic, and a drill would send users back to it. Whether the target is warm (running,
    healthy, the recorded images, UP on the LB) and the LB as the ledger says are checked on the host, not here.
    """
    full = bool(full)
    try:
        share = int(percent)
    except (TypeError, ValueError):
        share = None
    if not full and (share is None or not 1 <= share <= 99):
        raise InvalidParameters(
            f"percent={percent!r}: a partial drill moves 1 to 99 % of new traffic (full=true moves all of it)"
        )
    app = ledger.get("app")
    live = ledger.get("live") or ""
    colors = ledger.get("colors") or {}
    rollback = plan_rollback(ledger, new_id)
    target = rollback["to"] if rollback["mode"] == "previous" else ""
    record = colors.get(target) or {} if target else {}
    plan = {
        "kind": "drill",
        "id": new_id,
        "live": live,
        "to": target,
        "from": live,
        "full": full,
        "percent": 100 if full else share,
        "version": record.get("version") or "",
        "images": dict(record.get("images") or {}),
        "rollback_mode": rollback["mode"],
        "refused": None,
        "weights": None,
    }
    last = last_release(ledger)
    retired = sorted(c for c, r in colors.items() if c != live and (r or {}).get("state") == "retired")
    if rollback["mode"] in ("canary", "retry"):
        what = (
            f"the last rollback ({rollback.get('undoes')}) failed: finish it with playbooks/rollback.yml"
            if rollback["mode"] == "retry"
            else f"release {last.get('id')} of {app} is unfinished ({last.get('outcome')}: running, paused or "
            "interrupted) - finish it (release.yml) or undo it (rollback.yml)"
        )
        plan["refused"] = f"Drill of {app} refused: {what}, then drill."
    elif lock_state == "held":
        plan["refused"] = (
            f"Drill of {app} refused: another run holds the release lock (a release, rollback or contract is "
            "running); drill once it ended."
        )
    elif rollback["mode"] == "none":
        why = (
            f"{', '.join(retired)} was retired by a contract (its code does not work on the current schema)"
            if retired
            else "the ledger has no previous color (nothing was released before the live one, or it was redeployed)"
        )
        plan["refused"] = f"Drill of {app} refused: no previous color to drill to - {why}."
    elif rollback["refused"]:
        plan["refused"] = "Drill of " + rollback["refused"].split("Rollback of ", 1)[-1].replace(
            " Set switchyard_force_rollback=true to roll back anyway.", " A drill is never forced."
        )
    elif not after_rollback and left_by_rollback(ledger, target):
        entry = left_by_rollback(ledger, target)
        how = (
            f"rollback {entry.get('id')} took the traffic away from it"
            if entry.get("kind") == "rollback"
            else f"its release {entry.get('id')} ended {entry.get('outcome')}"
        )
        plan["refused"] = (
            f"Drill of {app} refused: {target} ({plan['version'] or '?'}) is the version an incident took out of "
            f"traffic - {how}; a drill would send users back to it. Set switchyard_drill_after_rollback=true to "
            "drill to it anyway."
        )
    if plan["refused"] is None:
        plan["weights"] = {target: MAX_WEIGHT, live: 0} if full else canary_weights(share, live, target)
    return plan
