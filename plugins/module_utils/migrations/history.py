# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The history table (what ran, when, with which checksum) and the backfill checkpoints."""

from __future__ import annotations

import re

IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def check_identifier(name, option):
    if not IDENT_RE.match(name):
        raise ValueError(f"{option}={name!r}: use a lowercase SQL identifier (letters, digits, underscore)")
    return name


class History:
    def __init__(self, table):
        self.table = check_identifier(table, "history_table")
        self.checkpoints = f"{table}_backfill"

    def exists(self, cur):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,))
        return cur.fetchone()[0]

    def create(self, cur):
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            " version integer NOT NULL, name text NOT NULL, phase text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL,"
            " retries integer NOT NULL DEFAULT 0, release_id text, PRIMARY KEY (version, phase))"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self.checkpoints} ("
            " version integer PRIMARY KEY, last_key bigint, rows_done bigint NOT NULL DEFAULT 0,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )

    def applied(self, cur, phase):
        """{version: checksum} of the phase, {} when the table does not exist yet."""
        if not self.exists(cur):
            return {}
        cur.execute(f"SELECT version, checksum FROM {self.table} WHERE phase = %s", (phase,))
        return dict(cur.fetchall())

    def record(self, cur, migration, duration_ms, retries, release_id):
        cur.execute(
            f"INSERT INTO {self.table} (version, name, phase, checksum, duration_ms, retries, release_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
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

    def checkpoint(self, cur, version):
        if not self.exists(cur):
            return None, 0
        cur.execute(f"SELECT last_key, rows_done FROM {self.checkpoints} WHERE version = %s", (version,))
        row = cur.fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def save_checkpoint(self, cur, version, last_key, rows_done):
        cur.execute(
            f"INSERT INTO {self.checkpoints} (version, last_key, rows_done) VALUES (%s, %s, %s)"
            " ON CONFLICT (version) DO UPDATE SET last_key = excluded.last_key, rows_done = excluded.rows_done,"
            " updated_at = now()",
            (version, last_key, rows_done),
        )
