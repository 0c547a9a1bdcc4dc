# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_check_plan: what a release run with --check would do, once check mode has resolved it - the
canary steps in the order they run with their weights, each service's image as the tag asked and the
digest it resolved to (what the deploy would run), and the migration files that would run by name."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _file_name(entry):
    """A pending migration (db_migration's pending, or a path) by its directory and file: 0002_x/expand.sql."""
    path = entry.get("file") if isinstance(entry, dict) else entry
    if not path:
        return f"{entry.get('version')}_{entry.get('name')}/{entry.get('phase')}"
    return "/".join(str(path).rstrip("/").split("/")[-2:])


def release_check_plan(plan, requested, pinned, pending=None):
    """Lines, in the order things would happen."""
    if not isinstance(plan, dict) or not isinstance(requested, dict) or not isinstance(pinned, dict):
        raise AnsibleFilterError(
            "release_check_plan: expected the plan (release_state action=plan), the images asked (service -> image) "
            "and the images pinned (image_verify's pinned: service -> repository@digest)"
        )
    steps = sorted(plan.get("weights_per_step") or [], key=lambda s: int(s["step"]))
    said = [f"{s['step']} % (" + ", ".join(f"{c} {w}" for c, w in sorted(s["weights"].items())) + ")" for s in steps]
    recreate = plan.get("recreate")
    if recreate:
        # A recreate has no canary steps: the live color recreated behind the maintenance page, in this order.
        lines = [f"strategy recreate of {recreate['color']}: " + "; then ".join(recreate.get("actions") or [])]
    else:
        lines = [f"steps: {' -> '.join(said) or 'none'}"]
    if plan.get("pause_after"):
        lines.append(f"pause after the {plan['pause_after']} % step for an approval")
    for service in sorted(set(requested) | set(pinned)):
        digest = str(pinned.get(service) or "").partition("@")[2] or "not resolved"
        lines.append(f"image {service}: {requested.get(service, '(not asked)')} -> {digest}")
    # In the order they would run: the expand files, then the backfills (a stable sort keeps versions in order).
    files = sorted((_file_name(p) for p in pending or []), key=lambda name: name.endswith("backfill.yml"))
    lines.append(f"migrations pending: {', '.join(files)}" if files else "migrations pending: none")
    return lines


class FilterModule:
    def filters(self):
        return {"release_check_plan": release_check_plan}
