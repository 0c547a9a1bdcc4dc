#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_state
short_description: The release ledger and the release lock of an application on a Docker host
version_added: 0.1.0
description:
  - Keeps, on each Docker host, the release ledger of one application - which color is live, which one was
    live before (the rollback target), what each color runs, the migrations applied and contracted, and what
    every release did (steps, gate verdicts, outcome) - and the release lock, which lets one release at a time
    change the application on that host.
  - The ledger is C(<path>/ledger.json), the lock C(<path>/release.lock), both JSON, mode 0600, replaced
    atomically (temporary file in the same directory, fsync, rename). The directory is created with mode 0700.
  - Every change is a read-modify-write inside an exclusive C(flock) on C(<path>/.release_state.mutex), so two
    runs at the same time cannot both take the lock.
  - The lock belongs to one run, named by a token (O(lock_token), returned when the lock is taken), and has an
    owner and an expiry (O(lock_ttl)). Its holder renews it with every V(step) (and V(renew)); the modules that
    change traffic, containers or the schema take the token (their C(lease) option) and renew it too. A lock
    held by another run - even one of the same release - is refused until it expires; an expired lock (or any
    lock, with O(force)) is taken over, the take-over is recorded in the ledger, and the release that lost it is
    marked V(abandoned).
  - A missing ledger is an empty one (no live color). A ledger or lock file that cannot be read makes the task
    fail and is never overwritten.
author:
  - Switchyard developers (@switchyard)
extends_documentation_fragment:
  - switchyard.release.state
attributes:
  check_mode:
    description: Reads and decides, writes nothing (not even the directory); the result is the would-be ledger and lock.
    support: full
  diff_mode:
    description: The ledger and the lock, before and after.
    support: full
options:
  action:
    description:
      - V(get) reads the ledger and the lock and changes nothing.
      - V(plan) reads them too and returns the plan of a release, a rollback or a contract (see O(plan)); it fails,
        with the plan, when that operation must not run now.
      - V(lock) takes the release lock for O(release_id) and returns its C(lock_token); V(renew) extends it by
        O(lock_ttl) from now; V(unlock) releases it.
      - V(begin) records a new release (it needs the lock); V(step) records one of its steps. Both renew the lock.
      - V(promote), V(rollback), V(fail) and V(retire) end a release and update the colors, then release the lock
        (see O(unlock)).
      - V(drill) records a rollback drill (O(drill)) in the ledger's C(drills) - nothing else changes - then
        releases the lock (see O(unlock)); refused under another run's lock.
    type: str
    required: true
    choices: [get, plan, lock, renew, unlock, begin, step, promote, rollback, fail, retire, drill]
  release_id:
    description:
      - The release, for example C(shop-20261126T170000-v2). Letters, digits, C(.), C(_), C(:) and C(-).
      - Required except with V(get), V(plan) and V(renew).
    type: str
  owner:
    description:
      - Who holds the lock and runs the release.
      - Defaults to C(<login user>@<hostname>) of the host running the module.
    type: str
  lock_ttl:
    description:
      - Seconds after which the lock expires and can be taken over, counted from when it was taken or last
        renewed (V(lock), V(begin), V(step), V(renew)).
    type: int
    default: 3600
  lock_token:
    description:
      - The token of the run that holds the lock - what V(lock) (or V(begin) with O(take_lock)) returned as
        C(lock_token). Letters, digits, C(_) and C(-), 8 to 128 characters.
      - When taking the lock - the token to hold it with (a new random one when omitted).
      - Required with V(step), V(renew) and V(begin) without O(take_lock); V(unlock) and the ending actions
        release the lock only when it matches, and the ending actions are refused under another run's lock.
    type: str
  take_lock:
    description:
      - With V(begin) - take the release lock first (as V(lock) does, with O(lock_ttl) and O(force)), in the same
        read-modify-write as the new entry.
    type: bool
    default: false
  plan:
    description: With V(plan) - what to plan.
    type: dict
    suboptions:
      kind:
        description:
          - V(release) - colors, the steps left and their weights, resume or not, noop when the live color already
            runs O(plan.version); refused while another version is paused.
          - V(rollback) - where the traffic goes back to; refused with nothing to go back to, to a retired color,
            or after a contract (unless O(plan.force_rollback)).
          - V(contract) - the old color and the schema level; refused during an unfinished release, without the
            live color's schema level, or inside the rollback window.
        type: str
        choices: [release, rollback, contract]
        required: true
      version:
        description:
          - V(release) - the version to release.
          - A label - a letter or digit, then up to 127 of C(A-Z a-z 0-9 . _ + -); it is written into the colors'
            C(color.env), so anything else (a newline, C(=)) is refused before the ledger is read.
        type: str
      canary_steps:
        description: V(release) - the percentages of the canary, increasing, ending with 100.
        type: list
        elements: int
        default: [10, 25, 50, 100]
      stop_after_step:
        description: V(release) - pause after this step for an approval.
        type: int
      migrations_level:
        description: V(release) - the schema level (highest migration version) the release leaves.
        type: int
        default: 0
      strategy:
        description:
          - V(release) - how the traffic moves (C(switchyard_strategy), docs/strategies.md). V(canary) - the canary
            steps, each below 100 % judged by the gate. V(bluegreen) - one switch of 100 %, the first window after it
            judged against the previous color, kept warm. V(recreate) - the live color recreated in place behind the
            maintenance page (the plan's C(recreate) says what it would do). V(ab) - an experiment -
            O(plan.ab_percent) of users on the new version until a run promotes it (O(plan.ab_promote)) or
            rollback.yml ends it. Anything else is refused naming the allowed values.
          - A paused release goes on with the strategy it began with. After a recreate that failed on the live color,
            only a recreate may run.
        type: str
        default: canary
      ab_percent:
        description: V(release) with O(plan.strategy=ab) - the share of users on variant B, 1 to 99.
        type: int
      ab_promote:
        description: V(release) - promote the running A/B experiment's variant B to 100 %.
        type: bool
        default: false
      ab_key:
        description:
          - V(release) with O(plan.strategy=ab) - what keeps a user on one variant, C(cookie <name>) (the LB's
            sticky cookie); required by an experiment.
        type: str
        default: ""
      force_rollback:
        description: V(rollback) - roll back even after contract migrations ran.
        type: bool
        default: false
      rollback_window:
        description: V(contract) - seconds the previous color stays ready for a rollback after its demotion.
        type: int
        default: 86400
      migrations:
        description: V(contract) - the application has migrations (the live color's schema level is then required).
        type: bool
        default: true
  kind:
    description: With V(begin) - the kind of release.
    type: str
    choices: [release, rollback, contract]
    default: release
  version:
    description:
      - With V(begin) - the version the release deploys.
      - For a V(release), a label as O(plan.version) takes it.
    type: str
  color:
    description:
      - With V(begin) - the color the release deploys. For a V(release), defaults to the color that is not live
        (V(blue) on a first deploy), and a live color is refused. For a V(rollback), defaults to previous.
      - With V(promote) - the color that becomes live (defaults to the release's color, and must agree with it).
      - With V(rollback) (required) - the color that holds the traffic after the rollback - the live color (the
        release's color never got the traffic) or the previous one (live and previous swap).
      - With V(retire) - the color to retire (defaults to the release's color; with neither, the release only ends).
    type: str
    choices: [blue, green]
  strategy:
    description:
      - With V(begin) - the release's strategy, recorded in its entry (C(strategy)). With V(recreate), the release
        deploys the live color itself (and its V(step) with C(deploying) or C(deployed) may name the live color).
    type: str
  from_color:
    description: With V(begin) - the color the release starts from. Defaults to the live color.
    type: str
    choices: [blue, green]
  experiment:
    description: With V(begin) of an A/B release - the experiment, kept in its ledger entry.
    type: dict
    suboptions:
      share:
        description: The share of users on variant B, 1 to 99.
        type: int
        required: true
      key:
        description: What keeps a user on one variant - C(cookie <name>) or C(header <name>).
        type: str
        required: true
  images:
    description: With V(begin) - service to digest-pinned image reference.
    type: dict
  step:
    description:
      - With V(step) - the step to record - C(name) (required) and any other keys, stored as given with the
        time in C(at).
      - A step with the same name and the same content (ignoring C(at) and C(updated_at)) changes nothing; with other
        content it replaces the recorded one, keeping its C(at) (when the step happened) and setting C(updated_at).
      - C(weights) - color to weight; also updates the ledger's weights.
      - C(migrations_applied) - migration names, added to the ledger's applied migrations.
      - C(migrations_contracted) - migration names, added to the ledger's contracted migrations (and the
        time of the last contract).
      - C(verdict) - a gate verdict C({verdict, reason}), added to the release's verdicts with the step name.
      - C(deploying) - V(true) records that the release's color is being replaced (state deploying); a C(previous) color
        stops being previous at once.
      - C(deployed) - V(true) records the release's version and images on its color, in state candidate; the step's
        own C(images), when given, are recorded instead (the digests actually deployed).
    type: dict
  drill:
    description:
      - With V(drill) - the drill's record, stored with the time in C(recorded_at); the same O(release_id) again
        replaces it.
      - C(to) and C(from) (required) - the color that took the drill's share and the live color; C(percent)
        (required) - the share of new traffic moved, 1 to 100; C(outcome) (required) - V(done), V(failed), or
        V(running) (written with O(unlock=false) before the drill moves traffic, with C(restore_to) - what a killed
        drill left to put back).
      - C(rto_ms) and C(back_ms) - milliseconds from the shift to the target serving (and back), null when not
        measured; C(failed_requests) - requests the LB failed over the drill; any other key is stored as given.
    type: dict
  weights:
    description: With V(promote), V(rollback), V(fail) or V(retire) - color to weight (0 to 256), stored in the ledger.
    type: dict
  reason:
    description: With V(rollback) or V(fail) - why, stored on the release.
    type: str
  untouched:
    description:
      - With V(fail), for a recreate - its containers were never touched (it failed before its stop began,
        compose_project's RV(switchyard.release.compose_project#module:touched=false)); the color's record goes
        back to what it ran before the release instead of being marked failed with a version that never ran there.
    type: bool
    default: false
  force:
    description:
      - With V(lock) - take over a lock that another release holds and that has not expired.
      - With V(unlock) - release a lock that another release holds.
      - With V(promote), V(rollback), V(fail), V(retire) or V(drill) - change the ledger although another release holds
        the lock.
    type: bool
    default: false
  unlock:
    description:
      - V(promote), V(rollback), V(fail), V(retire) and V(drill) also release the lock when O(release_id) holds it.
    type: bool
    default: true
  history_limit:
    description: Releases (and take-overs) kept in the ledger; the oldest are dropped.
    type: int
    default: 50
notes:
  - V(begin), V(step) and V(renew) need the lock held by O(lock_token) - in check mode too, where the preceding
    V(lock) task took nothing.
"""

EXAMPLES = r"""
- name: Take the release lock
  switchyard.release.release_state:
    app: shop
    action: lock
    release_id: "{{ release_id }}"
    lock_ttl: 900
  register: locked

- name: Begin the release (deploys the idle color)
  switchyard.release.release_state:
    app: shop
    action: begin
    release_id: "{{ release_id }}"
    lock_token: "{{ locked.lock_token }}"
    version: v2
    images: {api: "127.0.0.1:5000/shop/api@sha256:4f6e...", worker: "127.0.0.1:5000/shop/worker@sha256:9b1c..."}
  register: release

- name: Record the deploy of the candidate color
  switchyard.release.release_state:
    app: shop
    action: step
    release_id: "{{ release_id }}"
    lock_token: "{{ locked.lock_token }}"
    step: {name: deploy, deployed: true, migrations_applied: ["0003"]}

- name: Record a canary step and its verdict
  switchyard.release.release_state:
    app: shop
    action: step
    release_id: "{{ release_id }}"
    lock_token: "{{ locked.lock_token }}"
    step:
      name: canary-10
      weights: {blue: 230, green: 26}
      verdict: {verdict: "{{ gate.verdict }}", reason: "{{ gate.reason }}"}

- name: Promote and release the lock
  switchyard.release.release_state:
    app: shop
    action: promote
    release_id: "{{ release_id }}"
    lock_token: "{{ locked.lock_token }}"
    weights: {blue: 0, green: 256}

- name: Or the gate said rollback - traffic stays on the live color
  switchyard.release.release_state:
    app: shop
    action: rollback
    release_id: "{{ release_id }}"
    lock_token: "{{ locked.lock_token }}"
    color: "{{ release.release.from_color }}"
    reason: "{{ gate.reason }}"
    weights: {blue: 256, green: 0}

- name: Read the ledger
  switchyard.release.release_state:
    app: shop
    action: get
  register: state
"""

RETURN = r"""
ledger:
  description:
    - The ledger after the action (the would-be ledger in check mode) - schema, app, live, previous, colors,
      weights, migrations, releases, takeovers, drills (once a drill was recorded), updated_at. See the
      collection's docs/release_state.md.
  returned: always
  type: dict
  sample:
    schema: 1
    app: shop
    live: green
    previous: blue
    colors:
      green: {version: v2, images: {}, release_id: r2, state: live, deployed_at: "2026-11-26T17:00:00Z",
              promoted_at: "2026-11-26T17:20:00Z", demoted_at: null, retired_at: null}
    weights: {blue: 0, green: 256}
lock:
  description:
    - The release lock after the action - owner, release_id, token, acquired_at, expires_at, host, pid; null when
      free.
  returned: always
  type: dict
lock_token:
  description: The token of the run holding the lock when O(lock_token) holds it after the action (a new one after
    V(lock) without O(lock_token)); null otherwise.
  returned: always
  type: str
  sample: 3f0c9a7e5b1d4c2a8e6f0b9d7c5a3e1f
lock_state:
  description: V(free), V(held) or V(expired) - the state of the lock after the action.
  returned: always
  type: str
release:
  description:
    - The ledger's entry for O(release_id) after the action - id, kind, owner, started_at, finished_at, version,
      color, from_color, images, steps, verdicts, outcome (running, promoted, rolled_back, failed, abandoned, done)
      and reason; null when there is none.
  returned: always
  type: dict
plan:
  description:
    - With V(plan) - the plan. Always C(kind), C(id) (a new release id, or the paused release's) and C(refused)
      (null, or why the operation must not run).
    - V(release) - C(version), C(live), C(candidate), C(resume), C(resume_after_step), C(resume_images), C(noop),
      C(steps), C(weights_per_step) (a list in step order of C(step) and C(weights)), C(final_weights),
      C(pause_after), C(migrations_level), C(abandons), C(strategy) and C(recreate) (with V(recreate) and a live
      color - C(color), C(project), C(replaces) (what the color ran), C(actions) in order; null otherwise).
    - V(rollback) - C(mode) (canary, previous, none, or recreate - refused - after a recreate in place), C(to),
      C(away), C(version), C(weights), C(undoes).
    - V(contract) - C(live), C(old), C(demoted_at), C(window_ends), C(level), C(unfinished).
  returned: with action plan
  type: dict
takeover:
  description:
    - With V(lock), when the lock of another release was taken over - at, by, release_id, previous_owner,
      previous_release_id, since, expired_at, forced; null otherwise.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import (
    COLORS,
    DEFAULT_HISTORY_LIMIT,
    KINDS,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.manager import ReleaseStateManager
from ansible_collections.switchyard.release.plugins.module_utils.release.params import ACTIONS
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

ARGUMENT_SPEC = {
    **state_argument_spec(),
    "action": {"type": "str", "required": True, "choices": list(ACTIONS)},
    "release_id": {"type": "str"},
    "owner": {"type": "str"},
    "lock_ttl": {"type": "int", "default": 3600},
    "lock_token": {"type": "str", "no_log": False},
    "take_lock": {"type": "bool", "default": False},
    "plan": {
        "type": "dict",
        "options": {
            "kind": {"type": "str", "choices": ["release", "rollback", "contract"], "required": True},
            "version": {"type": "str"},
            "canary_steps": {"type": "list", "elements": "int", "default": [10, 25, 50, 100]},
            "stop_after_step": {"type": "int"},
            "migrations_level": {"type": "int", "default": 0},
            "strategy": {"type": "str", "default": "canary"},
            "ab_percent": {"type": "int"},
            "ab_promote": {"type": "bool", "default": False},
            "ab_key": {"type": "str", "default": "", "no_log": False},
            "force_rollback": {"type": "bool", "default": False},
            "rollback_window": {"type": "int", "default": 86400},
            "migrations": {"type": "bool", "default": True},
        },
    },
    "kind": {"type": "str", "choices": list(KINDS), "default": "release"},
    "version": {"type": "str"},
    "color": {"type": "str", "choices": list(COLORS)},
    "strategy": {"type": "str"},
    "from_color": {"type": "str", "choices": list(COLORS)},
    "experiment": {
        "type": "dict",
        "options": {
            "share": {"type": "int", "required": True},
            "key": {"type": "str", "required": True, "no_log": False},
        },
    },
    "images": {"type": "dict"},
    "step": {"type": "dict"},
    "drill": {"type": "dict"},
    "weights": {"type": "dict"},
    "reason": {"type": "str"},
    "untouched": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "unlock": {"type": "bool", "default": True},
    "history_limit": {"type": "int", "default": DEFAULT_HISTORY_LIMIT},
}


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=[
            *[("action", action, ["release_id"]) for action in ACTIONS if action not in ("get", "plan", "renew")],
            ("action", "step", ["step"]),
            ("action", "rollback", ["color"]),
            ("action", "drill", ["drill"]),
            ("action", "plan", ["plan"]),
        ],
    )
    run_module(module, ReleaseStateManager)


if __name__ == "__main__":
    main()
