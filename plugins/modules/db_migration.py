#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: db_migration
short_description: Expand, migrate (batched backfill) and contract PostgreSQL schemas without blocking the application
version_added: 0.1.0
description:
  - Applies a migrations directory (C(NNNN_name/expand.sql), C(backfill.yml), C(contract.sql)) phase by
    phase, in version order, recording each applied file with its sha256 checksum in a history table. A
    file changed after its phase was applied is refused, with both checksums.
  - Before anything runs, the directory must agree with the history of the phase - a file whose phase was
    applied and is now gone, a never-applied version numbered below an applied one, and a number missing
    from the sequence of version directories are refused, naming the versions (see O(allow_irregular)).
  - Each statement group of a file (the statements that share a transaction, or one statement that runs
    outside any) is recorded in C(<history_table>_groups) when it is done - in its own transaction when it
    has one - so a file whose later group failed resumes at that group on the next run. The failure names
    the groups applied and the one that failed. An applied group must not change; the groups not applied
    yet may (fix the failing statement and run again).
  - One runner at a time - a PostgreSQL advisory lock taken with a polling try-lock, never a blocking wait;
    C(lock_timeout) is set only after it is held, and only inside the migration's transactions.
  - Statements are split by PostgreSQL's own parser (pglast). Statements that cannot run in a transaction
    (C(CREATE INDEX CONCURRENTLY), C(VACUUM)...) run on their own; the others of a file run in one
    transaction, or one per statement when the file starts with C(-- switchyard:transaction per-statement).
    A lock timeout (55P03) is retried with bounded exponential backoff and jitter; when the budget runs
    out the task fails with the sessions holding locks on the tables (pid, application, state,
    transaction age and the first keywords of their statement - never its text, whose literals may carry
    secrets), and nothing of the failed group is applied.
  - An index left INVALID by an interrupted concurrent build is dropped and built again.
  - The migrate phase backfills in key-range batches, each its own short transaction with a checkpoint, so
    an interrupted run resumes where it stopped; C(changed=false) when no row is left.
  - A C(backfill.yml) names C(table) (V(name) or V(schema.name)) and C(key) as the catalog spells them - they are
    quoted, so mixed-case and reserved names work - and gives C(set) and C(where) as SQL fragments, with values
    in C(params) (a mapping) referred to as V(%(name\)s). A C(%) elsewhere in a fragment is a literal C(%).
    A fragment with a C(;), a comment, unpaired brackets, or a C(set) that adds C(FROM), C(WHERE) or
    C(RETURNING) is refused before any row changes, naming the file and the key; the batch's C(UPDATE) is
    linted like a migration file.
  - Lint runs on the parsed statements before anything runs; a migration may allow a rule with a comment
    C(-- switchyard:allow <rule> <why>).
  - Contract is refused while sessions of O(require_no_sessions_from) are connected.
author:
  - Switchyard developers (@switchyard)
requirements:
  - pglast (8.x) on the host that runs the module; PyYAML for backfill.yml.
notes:
  - An empty O(password_file) is refused before connecting, naming the file. The password is masked in the
    output (C(no_log)) unless it is shorter than 4 characters - masking those would garble every word of the
    output; a warning says so.
extends_documentation_fragment:
  - switchyard.release.lease
  - switchyard.release.postgres
attributes:
  check_mode:
    description:
      - Lists the pending versions, their statements with the lock each takes, and the lint findings; runs nothing.
      - A partly applied file lists only the statement groups left.
    support: full
  diff_mode:
    description: Not supported; the pending list says what would run.
    support: none
options:
  path:
    description: The migrations directory. Required with every phase but V(sessions).
    type: path
  phase:
    description:
      - V(expand), V(migrate) (backfills), V(contract), or V(status) (read only).
      - V(sessions) only refuses while sessions of O(require_no_sessions_from) are connected, and reads nothing else
        (no directory, no history); it is the guard of a contract that the application's own job runs
        (C(switchyard_migrations_runner=compose_job)).
    type: str
    choices: [expand, migrate, contract, status, sessions]
    required: true
  target:
    description: Stop at this version (inclusive).
    type: int
  lock_timeout:
    description: PostgreSQL lock_timeout for each migration transaction and backfill batch.
    type: str
    default: 500ms
  statement_timeout:
    description: PostgreSQL statement_timeout for the same; none when empty.
    type: str
    default: ""
  retry:
    description: Lock-timeout retries - attempts in all, and the backoff between them (seconds, with jitter).
    type: dict
    default: {}
    suboptions:
      attempts:
        description: Tries in all for one transaction.
        type: int
        default: 10
      base_delay:
        description: First delay, doubled after each try.
        type: float
        default: 0.2
      max_delay:
        description: Longest delay.
        type: float
        default: 5.0
  runner_lock_wait:
    description: Seconds to wait for another runner to finish before failing.
    type: int
    default: 300
  history_table:
    description:
      - The history table; its backfill checkpoints live in C(<history_table>_backfill) and the applied statement
        groups of each file in C(<history_table>_groups).
      - A history made by an earlier version of this module keeps its rows; the groups table is added next to it.
    type: str
    default: switchyard_schema_history
  allow_irregular:
    description:
      - Directory problems to accept with a warning instead of refusing them; all are refused by default.
      - V(deleted) - a file whose phase the history says was applied is gone from the directory (a backfill whose
        contract ran may always go).
      - V(out_of_order) - a version not applied yet is numbered below the highest applied version of the phase; it
        runs when accepted.
      - V(gap) - a version number is missing between two version directories (up to O(target)). A version directory
        without the phase's file is no gap.
    type: list
    elements: str
    choices: [deleted, out_of_order, gap]
    default: []
  lint:
    description: V(error) fails before anything runs when lint finds a problem, V(warn) reports it, V(off) skips lint.
    type: str
    choices: [error, warn, "off"]
    default: error
  batch_size:
    description: Rows per backfill batch (overrides backfill.yml).
    type: int
  pause_between_batches:
    description: Seconds to sleep between backfill batches, to leave room to the application.
    type: float
    default: 0
  max_batch_seconds:
    description: A batch slower than this halves the batch size (0 keeps it).
    type: float
    default: 1.0
  release_id:
    description: Recorded in the history with each applied file.
    type: str
  require_no_sessions_from:
    description:
      - With O(phase=contract) (when contract migrations are pending) and O(phase=sessions), refuse while sessions with
        these application names (SQL LIKE patterns) are connected.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Expand the schema before deploying the new color
  switchyard.release.db_migration:
    host: 127.0.0.1
    database: shop
    user: shop
    password_file: /var/lib/switchyard/shop/secrets/db_password
    path: /srv/shop/migrations
    phase: expand
    release_id: "{{ switchyard_release_id }}"

- name: Contract once the old color is gone
  switchyard.release.db_migration:
    dsn: "host=127.0.0.1 dbname=shop user=shop"
    password_file: /var/lib/switchyard/shop/secrets/db_password
    path: /srv/shop/migrations
    phase: contract
    require_no_sessions_from: ["shop-blue-%"]

- name: Before a contract the application's own job runs, refuse while the old color's sessions remain
  switchyard.release.db_migration:
    dsn: "host=127.0.0.1 dbname=shop user=shop"
    password_file: /var/lib/switchyard/shop/secrets/db_password
    phase: sessions
    require_no_sessions_from: ["shop-blue-%"]
"""

RETURN = r"""
applied:
  description:
    - Files applied by this run - version, name, phase, duration_ms, retries, groups (the file's statement groups) and
      groups_run (the numbers of those this run applied; fewer when an earlier run applied the first ones).
  returned: always
  type: list
  elements: dict
pending:
  description:
    - What is (or, in check mode, would be) run - per file its groups, groups_applied (by earlier runs) and the
      statements left with group, line, lock and transactional.
  returned: always
  type: list
  elements: dict
groups_applied:
  description:
    - The statement groups this run applied (version, phase, group), also when a later group failed - they stay
      applied and a re-run resumes after them.
  returned: when SQL ran
  type: list
  elements: dict
groups:
  description:
    - On a failed statement group, every group of that file - group, line, statement (first words), transactional
      and state (applied, failed, not run).
  returned: on failure of a statement group
  type: list
  elements: dict
irregularities:
  description:
    - The directory problems O(allow_irregular) accepted (kind, version, message), each also a warning. On a refusal,
      all those found. Empty with O(phase=status), which reports them per phase in RV(status).
  returned: always
  type: list
  elements: dict
lint:
  description: Lint findings - file, line, rule, message, recipe.
  returned: always
  type: list
  elements: dict
backfill:
  description: Per backfill - rows_total, rows_done, rows_this_run, batches, retries, seconds, rows_per_second.
  returned: when phase is migrate and something ran
  type: list
  elements: dict
max_lock_wait_ms:
  description: The longest a migration transaction took, lock waits included.
  returned: when SQL ran
  type: float
rebuilt_indexes:
  description: Invalid indexes dropped and built again.
  returned: when SQL ran
  type: list
  elements: str
sessions:
  description:
    - The connected sessions of O(require_no_sessions_from) - pid, application_name, state, client_addr,
      backend_start - when they refuse a contract ([] when O(phase=sessions) found none).
  returned: with phase sessions, and when sessions refuse a contract
  type: list
  elements: dict
blocking_sessions:
  description:
    - On a lock-timeout failure, the sessions holding locks on the tables - pid, application_name, state,
      transaction_age_s and statement (the first keywords of its current or last statement, such as C(SELECT) or
      C(ALTER TABLE); never the query text, whose literals may carry secrets).
  returned: on lock-timeout failure
  type: list
  elements: dict
status:
  description:
    - Per phase, applied and pending versions, changed files, partial (versions with some statement groups
      applied - version, groups_applied) and irregular (what O(allow_irregular) is about - kind, version, message).
  returned: when phase is status
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.migrations.connection import connection_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.migrations.manager import MigrationManager
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec

ARGUMENT_SPEC = {
    **connection_argument_spec(),
    **lease_argument_spec(),
    "path": {"type": "path"},
    "phase": {"type": "str", "choices": ["expand", "migrate", "contract", "status", "sessions"], "required": True},
    "target": {"type": "int"},
    "lock_timeout": {"type": "str", "default": "500ms"},
    "statement_timeout": {"type": "str", "default": ""},
    "retry": {
        "type": "dict",
        "default": {},
        "options": {
            "attempts": {"type": "int", "default": 10},
            "base_delay": {"type": "float", "default": 0.2},
            "max_delay": {"type": "float", "default": 5.0},
        },
    },
    "runner_lock_wait": {"type": "int", "default": 300},
    "history_table": {"type": "str", "default": "switchyard_schema_history"},
    "allow_irregular": {
        "type": "list",
        "elements": "str",
        "choices": ["deleted", "out_of_order", "gap"],
        "default": [],
    },
    "lint": {"type": "str", "choices": ["error", "warn", "off"], "default": "error"},
    "batch_size": {"type": "int"},
    "pause_between_batches": {"type": "float", "default": 0},
    "max_batch_seconds": {"type": "float", "default": 1.0},
    "release_id": {"type": "str"},
    "require_no_sessions_from": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_one_of=[("dsn", "host")],
        mutually_exclusive=[("dsn", "host")],
        required_if=[("phase", phase, ["path"]) for phase in ("expand", "migrate", "contract", "status")],
    )
    run_module(module, MigrationManager)


if __name__ == "__main__":
    main()
