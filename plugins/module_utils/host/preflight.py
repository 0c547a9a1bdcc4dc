# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight module: measure the Docker host in one call (two docker commands, statvfs,
/proc/meminfo, the clock), read the LB (its servers, its control socket's level, its configuration
checked where it runs) and the database (reachable, not in recovery, no long transaction on the
tables of the pending migrations), and judge the named checks. Changes nothing.

A check the operator turned off (skip) is neither measured nor judged: it is reported as skipped."""

from __future__ import annotations

import json
import os
import tempfile
import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError, CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.masking import scrub
from ansible_collections.switchyard.release.plugins.module_utils.common.secrets import mask
from ansible_collections.switchyard.release.plugins.module_utils.host import database
from ansible_collections.switchyard.release.plugins.module_utils.host.checks import (
    FAIL,
    PASS,
    SKIP,
    check,
    database_check,
    judge,
    ledger_record,
    parse_meminfo,
    turned_off,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.migrations.connection import (
    HAS_PSYCOPG2,
    connect,
    dsn_passwords,
    read_password,
)
from ansible_collections.switchyard.release.plugins.module_utils.migrations.history import check_identifier
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import HAS_PGLAST

try:
    import yaml

    HAS_YAML = True
except ImportError:  # needed only for the backfill.yml of pending migrations
    HAS_YAML = False

MEMINFO = "/proc/meminfo"


class PreflightFailed(SwitchyardError):
    """One or more named checks failed; details carry every check."""


def validate_limits(params):
    """Limits that argument_spec cannot check, refused before anything is measured."""
    for name in ("min_free_gb", "min_free_memory_mb", "max_clock_skew", "max_transaction_age"):
        if params[name] < 0:
            raise InvalidParameters(f"{name}={params[name]:g}: a limit is 0 or more")
    if not 0 <= params["min_free_percent"] <= 100:
        raise InvalidParameters(f"min_free_percent={params['min_free_percent']:g}: a percentage from 0 to 100")
    try:
        check_identifier(params["history_table"], "history_table")
    except ValueError as exc:
        raise InvalidParameters(str(exc)) from exc
    database.check_migration_keys(params["migrations"] or {})


class PreflightManager:
    def __init__(self, module, runner=None, conn=None):
        self.module = module
        self.params = module.params
        self.runner = runner or CommandRunner(module)
        self.conn = conn
        self.skip = set(self.params["skip"] or [])
        self.result = {"changed": False, "checks": [], "passed": [], "skipped": [], "record": []}

    # -- the host ------------------------------------------------------------------------------------
    def measure(self):
        """What the host checks that are on need; a measurement that fails is that check's failure."""

        def wanted(*names):
            return any(n not in self.skip for n in names)

        docker = self.params["docker_cli"]
        measured = {"clock_skew_s": None}
        info = {}
        if wanted("docker", "free_space"):
            try:
                info = self.runner.parsed([docker, "info", "--format", "{{json .}}"], "reading docker info", json.loads)
                measured["docker_version"] = info.get("ServerVersion")
            except CommandError as exc:
                measured["docker_error"] = f"Docker does not answer: {exc.msg}"
        if wanted("compose"):
            try:
                measured["compose_version"] = self.runner.parsed(
                    [docker, "compose", "version", "--short"], "reading the Compose version", lambda out: out.strip()
                )
            except CommandError as exc:
                measured["compose_error"] = f"no Compose v2 plugin: {exc.msg}"
        if wanted("free_space"):
            root = info.get("DockerRootDir")
            measured["docker_root"] = root
            if not root:
                measured["free_error"] = "Docker's data directory is unknown (docker info did not answer)"
            else:
                try:
                    fs = os.statvfs(root)
                    measured["free_bytes"] = fs.f_bavail * fs.f_frsize
                    measured["total_bytes"] = fs.f_blocks * fs.f_frsize
                except OSError as exc:
                    measured["free_error"] = f"cannot measure the free space under {root}: {exc}"
        if wanted("memory"):
            try:
                with open(MEMINFO, encoding="ascii") as handle:
                    memory = parse_meminfo(handle.read())
                measured["mem_available_kb"] = memory["available_kb"]
                measured["mem_total_kb"] = memory["total_kb"]
            except (OSError, ValueError) as exc:
                measured["memory_error"] = f"cannot read MemAvailable from {MEMINFO}: {exc}"
        controller = self.params["controller_time"]
        if controller is not None and wanted("clock"):
            measured["clock_skew_s"] = time.time() - controller
        return measured

    # -- the LB --------------------------------------------------------------------------------------
    def lb_checks(self):
        """lb (the servers of every route), lb_admin (the control socket at admin level), lb_config (the
        configuration valid where the LB runs): each skipped when no LB is given or it does not exist yet."""
        options = self.params["lb"]
        names = ("lb", "lb_admin", "lb_config")
        if not options:
            return [turned_off(n) if n in self.skip else check(n, SKIP, None, None, "no LB given") for n in names], {}
        lb = load_balancer({**options, "docker_cli": self.params["docker_cli"]}, self.runner)
        routes = self.params["routes"] or []
        lb.check_routes(routes)  # a name the LB cannot take is bad input, not "no answer"
        if not lb.exists():
            first = "no LB yet (first release)"
            return [turned_off(n) if n in self.skip else check(n, SKIP, None, None, first) for n in names], {}
        checks, servers = [], {}
        if "lb" in self.skip:
            checks.append(turned_off("lb"))
        else:
            try:
                servers = {route: lb.servers(route) for route in routes}
                checks.append(
                    check("lb", PASS, sorted(servers), None, f"the LB answers for {', '.join(sorted(servers))}")
                )
            except SwitchyardError as exc:
                checks.append(check("lb", FAIL, None, None, f"the LB does not answer: {exc.msg}"))
        checks.append(turned_off("lb_admin", "admin") if "lb_admin" in self.skip else self.lb_admin(lb))
        checks.append(turned_off("lb_config") if "lb_config" in self.skip else self.lb_config(lb))
        return checks, servers

    @staticmethod
    def lb_admin(lb):
        try:
            control = lb.control_level()
        except SwitchyardError as exc:
            return check("lb_admin", FAIL, None, "admin", f"the LB's control socket does not answer: {exc.msg}")
        if control["admin"]:
            return check("lb_admin", PASS, control["level"], "admin", f"{control['endpoint']} answers at level admin")
        return check(
            "lb_admin",
            FAIL,
            control["level"],
            "admin",
            f"{control['endpoint']} answers at level {control['level'] or '(nothing)'}, admin needed: a release "
            "changes weights and states through it",
        )

    @staticmethod
    def lb_config(lb):
        try:
            validated = lb.validate_config()
        except SwitchyardError as exc:
            return check("lb_config", FAIL, None, "valid", f"the LB's configuration cannot be checked: {exc.msg}")
        if validated["valid"]:
            return check("lb_config", PASS, "valid", "valid", f"{validated['file']} is valid")
        return check(
            "lb_config",
            FAIL,
            "invalid",
            "valid",
            f"{validated['file']} is not valid - the LB would not reload with it: {validated['output']}",
        )

    # -- the database ----------------------------------------------------------------------------------
    def database(self):
        params = self.params
        limit = params["max_transaction_age"]
        if "database" in self.skip:
            return turned_off("database", limit)
        if not (params.get("dsn") or params.get("host")):
            return check("database", SKIP, None, limit, params["no_database_reason"])
        missing = self.missing_libraries()
        if missing:
            return check("database", FAIL, None, limit, missing)
        passwords = dsn_passwords(params.get("dsn"))
        for password in passwords:
            mask(self.module, password, "dsn")
        conn = self.conn
        try:
            if params["password_file"]:  # masked before connecting; an empty or missing file is named
                mask(self.module, read_password(params["password_file"]), "password_file")
            if conn is None:
                conn = connect(params)
        except SwitchyardError as exc:  # no password, or options that cannot make a connection
            return database_check({"error": f"cannot connect to PostgreSQL: {exc.msg}"}, limit)
        except Exception as exc:  # psycopg2.OperationalError: the database does not answer
            reason = scrub(str(exc).strip(), passwords)
            return database_check({"error": f"cannot connect to PostgreSQL: {reason}"}, limit)
        try:
            with tempfile.TemporaryDirectory(prefix="switchyard-preflight-") as directory:
                migrations = (
                    database.write_migrations(params["migrations"], directory) if params["migrations"] else None
                )
                facts = database.database_facts(conn, params, yaml.safe_load if HAS_YAML else None, migrations)
        except SwitchyardError as exc:  # a migration that does not parse, a backfill.yml without its table
            return database_check({"error": f"cannot read the pending migrations: {exc.msg}"}, limit)
        except Exception as exc:  # psycopg2.Error while reading
            return database_check({"error": f"PostgreSQL error: {scrub(str(exc).strip(), passwords)}"}, limit)
        finally:
            conn.close()
        return database_check(facts, limit)

    def missing_libraries(self):
        """psycopg2 where the module runs - and pglast to read the pending migrations, PyYAML only when one
        of them is a backfill.yml."""
        migrations = self.params["migrations"] or {}
        needed = [(HAS_PSYCOPG2, "psycopg2")]
        if migrations:
            needed.append((HAS_PGLAST, "pglast"))
        if any(key.endswith("/backfill.yml") for key in migrations):
            needed.append((HAS_YAML, "PyYAML"))
        missing = [name for present, name in needed if not present]
        return missing_required_lib(" and ".join(missing)) if missing else None

    # -- all of it -------------------------------------------------------------------------------------
    def run(self):
        validate_limits(self.params)
        measured = self.measure()
        self.result["facts"] = measured
        checks = judge(measured, self.params, self.skip)
        lb_checks, servers = self.lb_checks()
        checks += lb_checks
        checks.append(self.database())
        values = [c["value"] for c in checks if isinstance(c.get("value"), dict)]
        for warning in (w for value in values for w in value.get("warnings") or []):
            self.module.warn(warning)  # shown as [WARNING] on the CLI and in AWX, not only inside the value
        self.result.update(
            checks=checks,
            lb_servers=servers,
            passed=[c["name"] for c in checks if c["status"] == PASS],
            skipped=[c["name"] for c in checks if c["status"] == SKIP],
            record=ledger_record(checks),
        )
        failed = [c for c in checks if c["status"] == FAIL]
        if failed:
            raise PreflightFailed(
                f"preflight failed ({len(failed)} check(s)): "
                + "; ".join(f"{c['name']}: {c['message']}" for c in failed)
            )
        return self.result
