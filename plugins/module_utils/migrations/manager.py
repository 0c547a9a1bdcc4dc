# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The db_migration phases: expand and contract (SQL files), migrate (batched backfills) and
status. Checks that the directory agrees with the history, plans and lints before anything runs;
applies under the runner's advisory lock; check mode stops after the plan."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.switchyard.release.plugins.module_utils.common.masking import scrub
from ansible_collections.switchyard.release.plugins.module_utils.common.secrets import mask
from ansible_collections.switchyard.release.plugins.module_utils.migrations import catalog, order
from ansible_collections.switchyard.release.plugins.module_utils.migrations.backfill import Backfill
from ansible_collections.switchyard.release.plugins.module_utils.migrations.connection import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    ConnectionSettingsError,
    connect,
    dsn_passwords,
    read_password,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.history import History
from ansible_collections.switchyard.release.plugins.module_utils.migrations.locking import (
    backoff_delays,
    release_runner_lock,
    take_runner_lock,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import MigrationError, PhaseRunner
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import (
    HAS_PGLAST,
    PGLAST_IMPORT_ERROR,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease

try:
    import psycopg2
except ImportError:  # reported through HAS_PSYCOPG2
    pass

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError:
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()

# Sessions of THIS database only: a server shared by several applications (a fleet's, or any managed PostgreSQL) has
# other applications' old colors connected to their own databases, which this contract does not touch.
SESSIONS_SQL = """
SELECT pid, application_name, state, client_addr::text, backend_start::text
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND datname = current_database() AND application_name LIKE ANY(%s)
ORDER BY application_name, pid
"""


def validate_static(params):
    retry = params["retry"]
    if retry["attempts"] < 1 or retry["base_delay"] < 0 or retry["max_delay"] < retry["base_delay"]:
        raise MigrationError(f"retry={retry}: attempts must be >= 1 and 0 <= base_delay <= max_delay (seconds)")
    if params["target"] is not None and params["target"] < 0:
        raise MigrationError(f"target={params['target']}: a version number is >= 0")
    if params["batch_size"] is not None and params["batch_size"] < 1:
        raise MigrationError(f"batch_size={params['batch_size']}: at least 1 row per batch")


def require_libraries():
    """psycopg2, pglast and PyYAML run where the module runs (the controller, or the Docker host)."""
    for present, name, error in (
        (HAS_PSYCOPG2, "psycopg2", PSYCOPG2_IMPORT_ERROR),
        (HAS_PGLAST, "pglast", PGLAST_IMPORT_ERROR),
        (HAS_YAML, "PyYAML", YAML_IMPORT_ERROR),
    ):
        if not present:
            raise MigrationError(missing_required_lib(name), exception=error)


class MigrationManager:
    def __init__(self, module, conn=None, yaml_load=None):
        self.module = module
        self.params = module.params
        self.conn = conn
        self.yaml_load = yaml_load
        self.history = None
        self.delays = None
        self.guard = None  # the lease's check before each group or batch (run() sets it)
        self.result = {
            "changed": False,
            "phase": self.params["phase"],
            "applied": [],
            "pending": [],
            "lint": [],
            "irregularities": [],
        }

    def partial_result(self):
        # What committed before a failure stays committed: say so.
        return {**self.result, "changed": bool(self.result["applied"] or self.result.get("groups_applied"))}

    def applied(self, phase):
        with self.conn.cursor() as cur:
            return self.history.applied(cur, phase)

    def recorded(self, phase):
        """What the history has of the phase: {version: name} of applied files, and History.progress()."""
        with self.conn.cursor() as cur:
            return self.history.names(cur, phase), self.history.progress(cur, phase)

    def check_order(self, versions, phase, names, progress, pending, exempt=()):
        """Refuse (or, when allow_irregular accepts them, warn about) deleted applied files,
        out-of-order versions and gaps, before anything runs."""
        partial = {v: p["name"] for v, p in progress.items() if v not in names}
        found = order.find(versions, phase, names, partial, pending, self.params["target"], exempt)
        accepted = order.refuse(found, self.params["allow_irregular"], phase, self.params["path"])
        for item in accepted:
            if item.as_dict() not in self.result["irregularities"]:  # planned twice: before and under the lock
                self.module.warn(f"allow_irregular accepts it: {item.message}")
        self.result["irregularities"] = [item.as_dict() for item in accepted]

    def run(self):
        require_libraries()
        if self.params["password_file"]:
            # before connecting: an empty file is refused here, and a short password is not masked
            mask(self.module, read_password(self.params["password_file"]), "password_file")
        # dsn is no_log, but Ansible masks only the whole DSN: libpq quotes the password alone when it cannot
        # parse it (`invalid percent-encoded token: "S3cr%zzet"`), so it is masked, and scrubbed from the error.
        passwords = dsn_passwords(self.params.get("dsn"))
        for password in passwords:
            mask(self.module, password, "dsn")
        if self.conn is None:
            try:
                self.conn = connect(self.params)
            except ConnectionSettingsError:
                raise
            except Exception as exc:  # psycopg2.OperationalError and friends: say where it failed
                raise MigrationError(f"cannot connect to PostgreSQL: {scrub(str(exc).strip(), passwords)}") from exc
        self.yaml_load = self.yaml_load or yaml.safe_load
        # Under a release's lease: checked and renewed before anything runs, and while the phase runs
        # (a backfill can outlast the lock's ttl); a run that lost its lock changes no schema.
        lease = Lease(self.params.get("lease"), self.module.check_mode, warn=self.module.warn)
        self.guard = lease.guard()
        try:
            with lease.kept():
                return self.run_phase()
        except psycopg2.Error as exc:
            raise MigrationError(f"PostgreSQL error: {str(exc).strip()}", sqlstate=exc.pgcode) from exc
        except OSError as exc:  # the catalog names what it reads; this catches a path it did not expect
            raise catalog.unreadable(exc.filename or self.params["path"], exc) from exc
        finally:
            self.conn.close()

    def run_phase(self):
        validate_static(self.params)
        self.history = History(self.params["history_table"])
        retry = self.params["retry"]
        self.delays = backoff_delays(retry["attempts"], retry["base_delay"], retry["max_delay"])
        phase = self.params["phase"]
        if phase == "sessions":  # the guard alone: a contract run by the application's own job
            self.refuse_live_sessions()
            self.result["sessions"] = []
            return self.result
        if phase == "status":
            return self.status()
        if phase == "migrate":
            return self.migrate()
        return self.sql_phase(phase)

    def status(self):
        report = {}
        versions = catalog.scan(self.params["path"])
        contracted = set(self.applied("contract"))
        for phase in ("expand", "migrate", "contract"):
            done = self.applied(phase)
            names, progress = self.recorded(phase)
            files = catalog.migrations(versions, phase, self.params["target"])
            pending = [m.version for m in files if m.version not in done]
            partial = {v: p for v, p in progress.items() if v not in done}
            exempt = contracted if phase == "migrate" else ()
            irregular = order.find(
                versions,
                phase,
                names,
                {v: p["name"] for v, p in partial.items()},
                [v for v in pending if v not in exempt],
                self.params["target"],
                exempt,
            )
            report[phase] = {
                "applied": sorted(done),
                "pending": pending,
                "changed_files": [m.path for m in files if m.version in done and done[m.version] != m.checksum],
                "partial": [{"version": v, "groups_applied": sorted(p["groups"])} for v, p in sorted(partial.items())],
                "irregular": [item.as_dict() for item in irregular],
            }
        self.result["status"] = report
        return self.result

    def plan_sql(self, runner, versions, migrations, phase):
        """The directory checked against the history, then the files (and groups) left to run."""
        names, progress = self.recorded(phase)
        pending_versions = [m.version for m in migrations if m.version not in names]
        self.check_order(versions, phase, names, progress, pending_versions)
        return runner.plan(migrations, self.applied(phase), progress)

    def sql_phase(self, phase):
        runner = PhaseRunner(self.conn, self.history, self.params, self.delays, self.module.check_mode, self.guard)
        versions = catalog.scan(self.params["path"])
        migrations = catalog.migrations(versions, phase, self.params["target"])
        pending, findings = self.plan_sql(runner, versions, migrations, phase)
        self.report_plan(pending, findings)
        if phase == "contract" and pending:
            self.refuse_live_sessions()
        if self.module.check_mode or not pending:
            self.result["changed"] = bool(pending)
            return self.result
        self.locked(lambda: self.apply_sql(runner, versions, migrations, phase))
        self.result["max_lock_wait_ms"] = round(runner.max_lock_wait_ms, 1)
        self.result["rebuilt_indexes"] = runner.rebuilt
        self.result["changed"] = bool(self.result["applied"])
        return self.result

    def apply_sql(self, runner, versions, migrations, phase):
        # Another runner may have applied some while this one waited for the lock: plan again.
        pending, _findings = self.plan_sql(runner, versions, migrations, phase)
        with self.conn.cursor() as cur:
            self.history.create(cur)
        self.result["groups_applied"] = runner.groups_applied  # filled as groups commit: kept on failure
        for one in pending:
            self.result["applied"].append(runner.apply(one))
        self.result["pending"] = []

    def report_plan(self, pending, findings):
        # A partly applied file lists only the groups left: what a run would execute.
        self.result["pending"] = [
            {
                **one.migration.as_dict(),
                "groups": len(one.groups),
                "groups_applied": list(range(1, one.done + 1)),
                "statements": [
                    {
                        "group": group.number,
                        "line": s.line,
                        "lock": s.lock,
                        "transactional": s.transactional,
                        "sql": s.sql[:300],
                    }
                    for group in one.remaining
                    for s in group.statements
                ],
            }
            for one in pending
        ]
        self.report_lint(findings)

    def report_lint(self, findings):
        self.result["lint"] = [f.as_dict() for f in findings]
        if findings and self.params["lint"] == "error":
            raise MigrationError(
                f"lint found {len(findings)} problem(s); nothing was run: "
                + "; ".join(f"{f.file}:{f.line} {f.rule}" for f in findings[:10])
                + " (fix them, allow one with a comment that says why, or set lint=warn)",
                lint=self.result["lint"],
            )

    def refuse_live_sessions(self):
        names = self.params["require_no_sessions_from"]
        if not names:
            return
        with self.conn.cursor() as cur:
            cur.execute(SESSIONS_SQL, (list(names),))
            cols = ("pid", "application_name", "state", "client_addr", "backend_start")
            sessions = [dict(zip(cols, row)) for row in cur.fetchall()]
        if sessions:
            apps = sorted({s["application_name"] for s in sessions})
            raise MigrationError(
                f"contract refused: {len(sessions)} session(s) of {', '.join(apps)} are connected "
                f"(require_no_sessions_from={list(names)}); retire that code first",
                sessions=sessions,
            )

    def locked(self, work):
        with self.conn.cursor() as cur:
            waited = take_runner_lock(cur, self.history.table, self.params["runner_lock_wait"])
        self.result["runner_lock_waited_s"] = round(waited, 3)
        try:
            work()
        finally:
            try:
                with self.conn.cursor() as cur:
                    release_runner_lock(cur, self.history.table)
            except Exception:  # a lost connection released it already; keep the first error
                pass

    def migrate(self):
        applied = self.applied("migrate")
        contracted = self.applied("contract")
        versions = catalog.scan(self.params["path"])
        files = catalog.migrations(versions, "migrate", self.params["target"])
        names, _progress = self.recorded("migrate")
        # A backfill whose contract ran is history: its file may go, and it never runs again.
        pending_versions = [m.version for m in files if m.version not in applied and m.version not in contracted]
        self.check_order(versions, "migrate", names, {}, pending_versions, exempt=set(contracted))
        migrations = []
        for migration in files:
            if migration.version in applied and applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{migration.path} changed after its migrate phase was applied: history checksum "
                    f"{applied[migration.version]}, file checksum {migration.checksum}; write a new version instead"
                )
            # Once its contract ran, a backfill's columns may be gone: it is history.
            if migration.version not in contracted:
                migrations.append(migration)
        settings = [("lock_timeout", self.params["lock_timeout"])]
        if self.params["statement_timeout"]:
            settings.append(("statement_timeout", self.params["statement_timeout"]))
        backfills = [
            Backfill(
                self.conn,
                self.history,
                m,
                catalog.parse_backfill(m, self.yaml_load),
                self.params,
                settings,
                self.delays,
                self.guard,
            )
            for m in migrations
        ]
        # Each batch's UPDATE is linted like a migration file (its set/where were refused already
        # when they smuggle a statement or a comment, whatever the lint option).
        self.report_lint([f for b in backfills for f in b.findings] if self.params["lint"] != "off" else [])
        with self.conn.cursor() as cur:
            table_exists = self.history.exists(cur)
        plans = [b.plan() if table_exists else {"rows_done": 0, "rows_left": b.remaining_any()} for b in backfills]
        self.result["pending"] = [
            {**b.migration.as_dict(), **p}
            for b, p in zip(backfills, plans)
            if p["rows_left"] or b.migration.version not in applied
        ]
        if self.module.check_mode or not self.result["pending"]:
            self.result["changed"] = bool(self.result["pending"])
            return self.result

        def work():
            with self.conn.cursor() as cur:
                self.history.create(cur)
            stats = []
            for backfill in backfills:
                one = backfill.run()
                one["version"] = backfill.migration.version
                stats.append(one)
                if backfill.migration.version not in self.applied("migrate"):
                    with self.conn.cursor() as cur:
                        self.history.record(
                            cur, backfill.migration, one["seconds"] * 1000, one["retries"], self.params["release_id"]
                        )
                    self.result["applied"].append(
                        {
                            "version": backfill.migration.version,
                            "name": backfill.migration.name,
                            "phase": "migrate",
                            "duration_ms": one["seconds"] * 1000,
                            "retries": one["retries"],
                        }
                    )
                    self.result["changed"] = True
                if one["rows_this_run"]:
                    self.result["changed"] = True
            self.result["backfill"] = stats
            self.result["pending"] = []

        self.locked(work)
        return self.result
