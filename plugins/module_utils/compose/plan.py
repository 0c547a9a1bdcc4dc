# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a state change would do to a project, from the containers that run and the desired
config hashes. It is both check mode's answer and the reference for `changed`."""

from __future__ import annotations

ACTIONS = ("created", "recreated", "started", "stopped", "removed")


def empty_actions():
    return {action: [] for action in ACTIONS}


def plan_present(desired_hashes, containers, remove_orphans):
    actions = empty_actions()
    for service, wanted in sorted(desired_hashes.items()):
        mine = [c for c in containers if c["service"] == service]
        if not mine:
            actions["created"].append(service)
        elif any(c["config_hash"] != wanted for c in mine):
            actions["recreated"].append(service)
        elif any(c["state"] != "running" for c in mine):
            actions["started"].append(service)
    if remove_orphans:
        orphans = sorted({c["service"] for c in containers if c["service"] not in desired_hashes})
        actions["removed"].extend(orphans)
    return actions


def plan_stopped(containers):
    actions = empty_actions()
    actions["stopped"] = sorted({c["service"] for c in containers if c["state"] in ("running", "restarting", "paused")})
    return actions


def after_stop(containers):
    """The containers as a successful `compose stop` leaves them: every one that ran has exited."""
    return [
        {**c, "state": "exited", "health": None} if c["state"] in ("running", "restarting", "paused") else c
        for c in containers
    ]


def plan_started(containers):
    """The services with a container that is not running (state=started starts what exists, creates nothing)."""
    actions = empty_actions()
    actions["started"] = sorted({c["service"] for c in containers if c["state"] != "running"})
    return actions


def images_not_matching(containers, images):
    """What keeps state=started from starting exactly the images given (service -> reference pinned by
    digest): a container of another digest. A tag says nothing about the content, so a service given by
    tag is not compared; a service without a container (scaled to 0) has nothing to start."""
    wrong = []
    for service, expected in sorted((images or {}).items()):
        if "@" not in expected:
            continue
        for container in (c for c in containers if c["service"] == service):
            image = container["image"] or ""
            if "@" not in image or image.split("@", 1)[1] != expected.split("@", 1)[1]:
                wrong.append(f"{service} ({container['name']}) runs {image or 'an unknown image'}, not {expected}")
    return wrong


def plan_absent(containers):
    actions = empty_actions()
    actions["removed"] = sorted({c["service"] for c in containers})
    return actions


def plan_restarted(containers):
    actions = empty_actions()
    actions["started"] = sorted({c["service"] for c in containers})
    return actions


def has_changes(actions):
    return any(actions[a] for a in ACTIONS)


def observed_change(before, after):
    """Containers differ in identity, state or config between two observations."""

    def key(containers):
        return sorted((c["id"], c["state"], c["config_hash"], c["image_id"]) for c in containers)

    return key(before) != key(after)
