# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way db_migration connects to PostgreSQL: a DSN, or host/port/database/user with the
password read from a file (never a password in the play), with an application_name so the
runner's own sessions are recognisable in pg_stat_activity."""

from __future__ import annotations

import re
import traceback
from urllib.parse import unquote

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.secrets import read_secret_file

try:
    import psycopg2
    import psycopg2.errors  # noqa: F401  (SQLSTATE classes, for lock timeouts)

    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # the module reports it with missing_required_lib
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()


def connection_argument_spec():
    """The connection options (doc fragment switchyard.release.postgres documents them)."""
    return {
        "dsn": {"type": "str", "no_log": True},
        "host": {"type": "str"},
        "port": {"type": "int", "default": 5432},
        "database": {"type": "str"},
        "user": {"type": "str"},
        "password_file": {"type": "path", "no_log": False},
        "application_name": {"type": "str", "default": "switchyard-db-migration"},
        "connect_timeout": {"type": "int", "default": 10},
    }


class ConnectionSettingsError(SwitchyardError):
    """The connection options cannot make a connection."""


# password=VALUE of a key/value DSN: a single-quoted value (with \\ and \' escapes) or a word.
KEYWORD_PASSWORD_RE = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def dsn_passwords(dsn):
    """The passwords in a DSN - as written and as decoded - so they can be masked: the userinfo password
    and a password= parameter of a URI (postgresql://app:PW@host/db?password=PW), or the password= of a
    key/value DSN. Read by hand, not by libpq: a DSN libpq cannot parse (a bad percent-encoding) is the
    one whose error message quotes the password."""
    dsn = str(dsn or "")
    found = []
    if re.match(r"postgres(?:ql)?://", dsn):
        rest = dsn.split("://", 1)[1]
        authority = re.split(r"[/?]", rest, maxsplit=1)[0]
        if "@" in authority:
            _user, sep, password = authority.rsplit("@", 1)[0].partition(":")
            if sep:
                found.append(password)
        query = rest.split("?", 1)[1] if "?" in rest else ""
        found += [raw.split("=", 1)[1] for raw in query.split("&") if raw.startswith("password=")]
        found += [unquote(value) for value in found]  # a URI's values are percent-encoded
    else:
        for value in KEYWORD_PASSWORD_RE.findall(dsn):
            found.append(value)
            if value.startswith("'") and value.endswith("'") and len(value) >= 2:
                found.append(value[1:-1])
                found.append(re.sub(r"\\(.)", r"\1", value[1:-1]))
    return [value for value in dict.fromkeys(found) if value]


def read_password(path):
    """The password: the file's first line; an empty one is refused before any connection."""
    return read_secret_file(path, "password_file")


def connect(params):
    """An autocommit connection: the runner opens its transactions explicitly."""
    kwargs = {"application_name": params["application_name"], "connect_timeout": params["connect_timeout"]}
    if params.get("password_file"):
        kwargs["password"] = read_password(params["password_file"])
    if params.get("dsn"):
        conn = psycopg2.connect(params["dsn"], **kwargs)
    else:
        missing = [k for k in ("host", "database", "user") if not params.get(k)]
        if missing:
            raise ConnectionSettingsError(f"give dsn, or host, database and user (missing: {', '.join(missing)})")
        conn = psycopg2.connect(
            host=params["host"], port=params["port"], dbname=params["database"], user=params["user"], **kwargs
        )
    conn.autocommit = True
    return conn
