# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hosts of one release batch, moved as one.

Ansible runs the hosts of a batch in lockstep, but a host that fails goes to its rescue only after the others have run
every task left in the block: without a check, the healthy hosts would go on shifting traffic while one host is down.
So each traffic change is preceded by a synchronisation point: every host marks that it got there, and a host that
sees another host of its batch missing stops too, and goes back to its live color (its rescue). The batch is the one
the release started with (Ansible drops unreachable hosts from ansible_play_batch).
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters

MODES = ("fleet", "wave")


def _course(release_plan):
    """What a host's release goes through, as far as the batch's synchronisation points are concerned."""
    release_plan = release_plan or {}
    return (
        bool(release_plan.get("live")),
        release_plan.get("recreate") is not None,
        tuple(release_plan.get("steps") or ()),
        release_plan.get("resume_after_step"),
        release_plan.get("pause_after"),
    )


def _describe(course):
    live, recreate, steps, resume, pause = course
    if not live:
        return "never released (a first release: one step to 100 %)"
    if recreate:
        return "a recreate of the live color"
    words = f"steps {', '.join(f'{s} %' for s in steps)}" if steps else "no step"
    if resume is not None:
        words = f"resuming after the {resume} % step, {words}"
    if pause is not None:
        words += f", pausing after {pause} %"
    return words


def disagreement(plans):
    """Why the hosts of a batch cannot move together ("" when they can).

    Hosts in lockstep meet at each synchronisation point: a host whose release goes through other points (a first
    release among released hosts, a release resumed on some hosts only) would never meet the others there, and the
    whole batch would roll back at the first one. Refused before anything changes instead.
    """
    groups = {}
    for host, release_plan in plans.items():
        groups.setdefault(_course(release_plan), []).append(str(host))
    if len(groups) < 2:
        return ""
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1]))
    described = "; ".join(f"{', '.join(names)}: {_describe(course)}" for course, names in ordered)
    new = sorted(h for course, names in groups.items() if not course[0] for h in names)
    if new:
        hint = (
            f"Release the version the other hosts run on {', '.join(new)} alone first (-l {','.join(new)} "
            "-e switchyard_version=<that version>; status.yml shows it), then release them together"
        )
    else:
        hint = "Bring the hosts to the same state first (finish or roll back the release paused on some of them)"
    return (
        f"The hosts of this batch cannot move together (switchyard_fleet_mode moves them through the same steps): "
        f"{described}. {hint}, or release them one at a time (-e switchyard_fleet_mode=wave -e switchyard_serial=1). "
        "Nothing was changed."
    )


def _largest_batch(serial, play_size):
    """The largest batch Ansible would make of play_size hosts with this serial ("" or None: one host at a time)."""
    sizes = []
    for value in serial if isinstance(serial, (list, tuple)) else [serial]:
        text = str(value).strip()
        if text in ("", "None"):
            sizes.append(1)
        elif text.endswith("%"):
            try:
                sizes.append(max(1, int(play_size * float(text[:-1]) / 100)))
            except ValueError:
                return play_size  # not a serial Ansible would take: not ours to judge
        else:
            try:
                sizes.append(int(text) or play_size)  # serial 0: every host
            except ValueError:
                return play_size
    return max(sizes or [play_size])


def plan(mode, batch, play_hosts, done=(), plans=None, serial=None):
    """The batch's hosts that have something to do, and the one that runs what runs once (migrations, contract).

    ``done``: hosts of the batch with nothing to do (the version already live there: a re-run after a host failed).
    ``plans``: host -> its release plan; hosts that would go through different steps are refused (disagreement).
    ``serial``: switchyard_serial as the host sees it ("" when unset), to check that wave mode made the batches; None:
    not checked (the batch was checked already).
    """
    if mode not in MODES:
        raise InvalidParameters(f"switchyard_fleet_mode must be one of {', '.join(MODES)}, got {mode!r}")
    batch_size, play_size = len(batch or []), len(play_hosts or [])
    if mode == "wave" and serial is not None and play_size > 1 and batch_size > _largest_batch(serial, play_size):
        # The playbook's `serial` is templated before any host's variables are read: it saw no wave mode (or not
        # these waves), and this batch is larger than any wave the host's variables ask for.
        raise InvalidParameters(
            "switchyard_fleet_mode=wave is set where the play's serial cannot see it (inventory or host variables): "
            f"this batch holds {batch_size} of the {play_size} hosts, more than the waves asked for "
            f"(switchyard_serial={serial or 'unset: one host at a time'}). Pass them as extra vars "
            "(-e switchyard_fleet_mode=wave, which releases one host at a time, and -e switchyard_serial=..., e.g. "
            "-e \"switchyard_serial=['1', '25%', '100%']\"). Nothing was changed."
        )
    done = {str(h) for h in done or ()}
    hosts = [str(h) for h in batch or [] if str(h) not in done]
    if plans:
        why = disagreement({h: p for h, p in plans.items() if str(h) in hosts})
        if why:
            raise InvalidParameters(why)
    everyone = [str(h) for h in play_hosts or hosts]
    if not hosts:
        return {"mode": mode, "hosts": [], "size": len(everyone), "leader": "", "lockstep": False, "first_batch": False}
    return {
        "mode": mode,
        "hosts": hosts,
        "size": len(everyone),
        # The first host of the batch, in inventory order: the migrations run there, once, before any host deploys.
        "leader": hosts[0],
        "lockstep": len(hosts) > 1,
        "first_batch": hosts[0] == everyone[0],
    }


def dropped(hosts, marks, point):
    """The hosts of the batch that did not reach this point (failed, in their rescue, or unreachable)."""
    return [h for h in hosts if marks.get(h) != point]


def summary(app, per_host):
    """The controller's view of the hosts: which runs what, and where a host disagrees with the others.

    ``per_host``: host -> {color, version} of its live color ("" when nothing is live there). The most common version
    is the fleet's; a host on another one (or on nothing) disagrees.
    """
    hosts = {
        str(h): {"color": (v or {}).get("color") or "", "version": (v or {}).get("version") or ""}
        for h, v in per_host.items()
    }
    by_version = {}
    for host, live in hosts.items():
        by_version.setdefault(live["version"], []).append(host)
    # The version most hosts run; a tie goes to the highest name (sorted): the answer does not depend on the order.
    fleet_version = max(by_version, key=lambda v: (len(by_version[v]), v != "", v)) if by_version else ""
    disagree = sorted(h for h, live in hosts.items() if live["version"] != fleet_version)
    described = "; ".join(
        f"{version or 'nothing live'} on {', '.join(sorted(names))}"
        for version, names in sorted(by_version.items(), key=lambda item: (-len(item[1]), item[0]))
    )
    if not disagree:
        line = f"{app}: {fleet_version or 'nothing live'} on every host ({len(hosts)}: {', '.join(sorted(hosts))})"
    else:
        line = f"{app}: the hosts disagree - {described}; not on {fleet_version}: {', '.join(disagree)}"
    return {
        "hosts": hosts,
        "versions": {v: sorted(n) for v, n in by_version.items()},
        "version": fleet_version,
        "consistent": not disagree,
        "disagree": disagree,
        "line": line,
    }
