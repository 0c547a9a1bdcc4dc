#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check a Docker host, its LB and its database before a release, each check named, in one call
version_added: 0.1.0
description:
  - Measures the Docker host - the Engine's version and data directory (C(docker info)), the Compose v2 plugin's
    version, the free space under the data directory (GB and percent), the memory available (C(MemAvailable) of
    C(/proc/meminfo)), the host's clock against the controller's.
  - When the application's LB runs, reads the servers of every route, asks its control socket at which level it
    answers (a release needs admin), and checks the configuration it runs with by its own validator where it runs
    (HAProxy - C(haproxy -c) in the LB container through C(docker exec)), all through the LB interface.
  - When a database is given, connects (the same connection options as M(switchyard.release.db_migration)), checks
    it is not in recovery and that no transaction older than O(max_transaction_age) holds or waits for a lock on a
    table the pending migrations touch - the files of O(migration_phases) in O(migrations) the history table does
    not have, their tables found by PostgreSQL's parser (pglast) as db_migration finds them. The tables and the
    sessions are named in the output (a session's statement by its first keywords only). An autovacuum worker
    on those tables does not count unless it runs to prevent wraparound (the others cancel themselves for DDL).
  - The transaction age of another role's session is visible only to a member of that role or of
    C(pg_read_all_stats). Sessions of other roles that hold or wait for a lock on those tables and whose age is
    not visible do not fail the check (app sessions hold short locks all the time); the check passes saying how
    many there are, on which tables, their pids and roles, and to grant C(pg_read_all_stats) - in its message and
    in C(warnings) of its value.
  - Each check has a name (C(docker), C(compose), C(free_space), C(memory), C(clock), C(lb), C(lb_admin),
    C(lb_config), C(database)), a status (pass, fail, skip), the value measured and the limit. The task fails,
    naming every failed check, what it saw and the limit, before a release changes anything.
  - A check named in O(skip) is neither measured nor judged; it is reported with status skip and the reason
    C(turned off by switchyard_preflight_skip), in RV(skipped) and in RV(record).
  - Changes nothing, in check mode too. The migrations given are written to a private temporary directory, read
    and removed.
author:
  - Switchyard developers (@switchyard)
requirements:
  - psycopg2 on the host that runs the module when a database is given; pglast (8.x) too when O(migrations) is
    given, and PyYAML when one of them is a C(backfill.yml).
extends_documentation_fragment:
  - switchyard.release.attributes
  - switchyard.release.lb
  - switchyard.release.postgres
attributes:
  check_mode:
    description: Measures and judges as in a run; it never changes anything.
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
notes:
  - The connection options are optional here - without O(dsn) or O(host) the database check is skipped with the
    reason O(no_database_reason). The password is masked in the output (C(no_log)); a connection error is shown
    with the passwords of O(dsn) scrubbed.
options:
  docker_cli:
    description: The docker client (also for the LB's configuration check, C(docker exec) in the LB container).
    type: path
    default: docker
  min_docker_version:
    description: The oldest Docker Engine accepted.
    type: str
    default: "20.10"
  min_compose_version:
    description: The oldest Compose plugin accepted (v2).
    type: str
    default: "2.0.0"
  min_free_gb:
    description: Free space needed under Docker's data directory, in GB.
    type: float
    default: 2
  min_free_percent:
    description: Free space needed under Docker's data directory, in percent of its file system (0 to 100).
    type: float
    default: 10
  min_free_memory_mb:
    description: Memory the host must have available (C(MemAvailable) of C(/proc/meminfo)), in MB.
    type: int
    default: 256
  controller_time:
    description: The controller's clock (seconds since the epoch) when the task was sent; without it, no clock check.
    type: float
  max_clock_skew:
    description: Largest difference between the host's clock and O(controller_time), in seconds.
    type: float
    default: 5
  lb:
    description:
      - The application's LB; when it exists, its servers are read, its control socket's level asked and its
        configuration checked. Without it, or before it exists (a first release), the C(lb), C(lb_admin) and
        C(lb_config) checks are skipped, saying why.
    required: false
  routes:
    description: The routes whose servers are read on the LB.
    required: false
    default: []
  skip:
    description:
      - Checks to turn off (the preflight role's C(switchyard_preflight_skip)). Each is reported with status skip.
      - An unknown name is refused with the allowed values, before anything is measured.
    type: list
    elements: str
    choices: [docker, compose, free_space, memory, clock, lb, lb_admin, lb_config, database]
    default: []
  max_transaction_age:
    description:
      - The oldest transaction, in seconds, allowed to hold or wait for a lock on a table the pending migrations
        touch (it would make their DDL wait, and everything queued behind it).
    type: float
    default: 60
  migrations:
    description:
      - The migration files, as C(NNNN_name/expand.sql), C(NNNN_name/backfill.yml) or C(NNNN_name/contract.sql)
        (the layout of the migrations directory) mapped to their text - the preflight role reads them on the
        controller, before they are copied to the host. Without them no table is checked.
    type: dict
    default: {}
  migration_phases:
    description: The phases whose pending files count (a release runs expand and the backfills).
    type: list
    elements: str
    choices: [expand, migrate, contract]
    default: [expand, migrate]
  migrations_target:
    description: Only the migrations up to this version (inclusive) count.
    type: int
  history_table:
    description: The history table of M(switchyard.release.db_migration), which says what is applied.
    type: str
    default: switchyard_schema_history
  no_database_reason:
    description:
      - Why the database check is skipped when neither O(dsn) nor O(host) is given - the preflight role says the
        data project does not exist yet on a first release.
    type: str
    default: no database given
"""

EXAMPLES = r"""
- name: Check the Docker host, the LB and the database
  switchyard.release.preflight:
    min_free_gb: 2
    min_free_percent: 10
    min_free_memory_mb: 512
    controller_time: "{{ now(utc=true).timestamp() }}"
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    host: 172.20.0.2
    database: shop
    user: shop
    password_file: /var/lib/switchyard/shop/secrets/db_password
    application_name: switchyard-preflight
    migrations:
      0002_display_name/expand.sql: "ALTER TABLE items ADD COLUMN display_name text;"
    max_transaction_age: 30
    skip: [clock]
  register: preflight
"""

RETURN = r"""
checks:
  description:
    - Every check in order - name, status (pass, fail, skip), value, limit, message.
    - The database check's value - database, in_recovery, tables, long_transactions, unseen_sessions (pid, user,
      application_name, tables, granted of the other roles' sessions whose transaction age is not visible) and
      warnings (what the message says about them; the check still passes).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: free_space, status: pass, value: {bytes: 85899345920, gb: 80.0, percent: 32.0},
       limit: {gb: 2.0, percent: 10.0}, message: "80.0 GB (32.0 %) free under /var/lib/docker"}
    - {name: database, status: fail, limit: 1.0,
       value: {database: shop, in_recovery: false, tables: [items],
               long_transactions: [{pid: 4242, application_name: psql, state: idle in transaction,
                                    transaction_age_s: 3.2, tables: [items], granted: true, statement: LOCK}],
               unseen_sessions: [], warnings: []},
       message: "database shop: 1 transaction(s) older than max_transaction_age=1 s on the tables the pending
         migrations touch: pid 4242 (application psql, idle in transaction, transaction open 3.2 s, holds a lock
         on items, LOCK)"}
passed:
  description: The names of the checks that passed.
  returned: always
  type: list
  elements: str
  sample: [docker, compose, free_space, memory, clock]
skipped:
  description:
    - The names of the checks skipped - turned off by O(skip), or with nothing to check (no LB yet, no database).
  returned: always
  type: list
  elements: str
  sample: [lb, lb_admin, lb_config, database]
record:
  description:
    - The checks as the ledger keeps them - name, status, value, limit, and the reason of a skip or a failure.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: memory, status: pass, value: {available_mb: 23598, total_mb: 24105}, limit: 256}
    - {name: clock, status: skip, value: null, limit: 5.0, reason: turned off by switchyard_preflight_skip}
facts:
  description:
    - What was measured - docker_version, compose_version, docker_root, free_bytes, total_bytes, mem_available_kb,
      mem_total_kb, clock_skew_s (what a skipped check needs is not measured).
  returned: always
  type: dict
lb_servers:
  description: Route to color to the servers the LB shows ({} without an LB).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.host.checks import CHECKS
from ansible_collections.switchyard.release.plugins.module_utils.host.preflight import PreflightManager
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.migrations.connection import connection_argument_spec

ARGUMENT_SPEC = {
    "docker_cli": {"type": "path", "default": "docker"},
    "min_docker_version": {"type": "str", "default": "20.10"},
    "min_compose_version": {"type": "str", "default": "2.0.0"},
    "min_free_gb": {"type": "float", "default": 2},
    "min_free_percent": {"type": "float", "default": 10},
    "min_free_memory_mb": {"type": "int", "default": 256},
    "controller_time": {"type": "float"},
    "max_clock_skew": {"type": "float", "default": 5},
    # The LB is optional here: a host is checked before its first release too.
    "lb": {**lb_argument_spec()["lb"], "required": False},
    "routes": {**lb_argument_spec()["routes"], "required": False, "default": []},
    "skip": {"type": "list", "elements": "str", "choices": list(CHECKS), "default": []},
    # The database is optional too (no data project yet): without dsn or host its check is skipped.
    **connection_argument_spec(),
    "max_transaction_age": {"type": "float", "default": 60},
    "migrations": {"type": "dict", "default": {}},
    "migration_phases": {
        "type": "list",
        "elements": "str",
        "choices": ["expand", "migrate", "contract"],
        "default": ["expand", "migrate"],
    },
    "migrations_target": {"type": "int"},
    "history_table": {"type": "str", "default": "switchyard_schema_history"},
    "no_database_reason": {"type": "str", "default": "no database given"},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[("dsn", "host")])
    run_module(module, PreflightManager)


if __name__ == "__main__":
    main()
