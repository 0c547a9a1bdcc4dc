# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The history tables: what ran, when, with which checksum.

- `<history_table>`: one row per applied file (version, phase), written with its last statement group.
- `<history_table>_groups`: one row per applied statement group of a file (version, phase, group),
  with the group's checksum, so a file whose later group failed resumes at that group instead of
  running its first groups twice. Added next to existing history tables by `create()` (IF NOT
  EXISTS): a database migrated by an older runner keeps its rows and gains the table.
- `<history_table>_backfill`: the backfill checkpoints.

Reads never create anything (check mode); a table that does not exist yet reads as empty."""

from __future__ import annotations

import re

try:
    from psycopg2 import sql
except ImportError:  # the module reports psycopg2 missing before using this
    sql = None

IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def check_identifier(name, option):
    if not IDENT_RE.match(name):
        raise ValueError(f"{option}={name!r}: use a lowercase SQL identifier (letters, digits, underscore)")
    return name


class History:
    def __init__(self, table):
        self.table = check_identifier(table, "history_table")
        self.checkpoints = f"{table}_backfill"
        self.groups_table = f"{table}_groups"

    def _sql(self, template):
        """template with {history}, {checkpoints} and {groups} quoted as identifiers."""
        tables = {"history": self.table, "checkpoints": self.checkpoints, "groups": self.groups_table}
        return sql.SQL(template).format(**{key: sql.Identifier(value) for key, value in tables.items()})

    @staticmethod
    def _table_exists(cur, name):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        return cur.fetchone()[0]

    def exists(self, cur):
        return self._table_exists(cur, self.table)

    def create(self, cur):
        cur.execute(
            self._sql(
                "CREATE TABLE IF NOT EXISTS {history} ("
                " version integer NOT NULL, name text NOT NULL, phase text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL,"
                " retries integer NOT NULL DEFAULT 0, release_id text, PRIMARY KEY (version, phase))"
            )
        )
        cur.execute(
            self._sql(
                "CREATE TABLE IF NOT EXISTS {checkpoints} ("
                " version integer PRIMARY KEY, last_key bigint, rows_done bigint NOT NULL DEFAULT 0,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        cur.execute(
            self._sql(
                "CREATE TABLE IF NOT EXISTS {groups} ("
                " version integer NOT NULL, phase text NOT NULL, group_no integer NOT NULL, name text NOT NULL,"
                " checksum text NOT NULL, first_line integer NOT NULL, statement text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL,"
                " release_id text, PRIMARY KEY (version, phase, group_no))"
            )
        )

    def applied(self, cur, phase):
        """{version: checksum} of the phase, {} when the table does not exist yet."""
        if not self.exists(cur):
            return {}
        cur.execute(self._sql("SELECT version, checksum FROM {history} WHERE phase = %s"), (phase,))
        return dict(cur.fetchall())

    def names(self, cur, phase):
        """{version: name} of the files of the phase the history has."""
        if not self.exists(cur):
            return {}
        cur.execute(self._sql("SELECT version, name FROM {history} WHERE phase = %s"), (phase,))
        return dict(cur.fetchall())

    def progress(self, cur, phase):
        """{version: {"name": name, "groups": {group_no: checksum}}} of the phase's applied groups."""
        if not self._table_exists(cur, self.groups_table):
            return {}
        cur.execute(
            self._sql("SELECT version, name, group_no, checksum FROM {groups} WHERE phase = %s ORDER BY 1, 3"),
            (phase,),
        )
        out = {}
        for version, name, group_no, checksum in cur.fetchall():
            out.setdefault(version, {"name": name, "groups": {}})["groups"][group_no] = checksum
        return out

    def record(self, cur, migration, duration_ms, retries, release_id):
        cur.execute(
            self._sql(
                "INSERT INTO {history} (version, name, phase, checksum, duration_ms, retries, release_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            ),
            (
                migration.version,
                migration.name,
                migration.phase,
                migration.checksum,
                int(duration_ms),
                retries,
                release_id,
            ),
        )

    def record_group(self, cur, migration, group, duration_ms, release_id):
        """One applied statement group; in the group's own transaction when it has one."""
        cur.execute(
            self._sql(
                "INSERT INTO {groups} (version, phase, group_no, name, checksum, first_line, statement,"
                " duration_ms, release_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            (
                migration.version,
                migration.phase,
                group.number,
                migration.name,
                group.checksum,
                group.line,
                group.words,
                int(duration_ms),
                release_id,
            ),
        )

    def checkpoint(self, cur, version):
        if not self.exists(cur):
            return None, 0
        cur.execute(self._sql("SELECT last_key, rows_done FROM {checkpoints} WHERE version = %s"), (version,))
        row = cur.fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def save_checkpoint(self, cur, version, last_key, rows_done):
        cur.execute(
            self._sql(
                "INSERT INTO {checkpoints} (version, last_key, rows_done) VALUES (%s, %s, %s)"
                " ON CONFLICT (version) DO UPDATE SET last_key = excluded.last_key,"
                " rows_done = excluded.rows_done, updated_at = now()"
            ),
            (version, last_key, rows_done),
        )
