# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/migrations/connection.py: connection_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  dsn:
    description:
      - A libpq connection string. Prefer O(password_file) over a password inside it.
      - A password inside it (a URI's userinfo or C(password=) parameter, a key/value C(password=)) is masked on its
        own in the result and in connection errors, not only the whole string.
    type: str
  host:
    description: Database host.
    type: str
  port:
    description: Database port.
    type: int
    default: 5432
  database:
    description: Database name.
    type: str
  user:
    description: Database user.
    type: str
  password_file:
    description:
      - File whose first line is the password (for example a Docker secret). Never a password in the play.
      - An empty first line is refused before connecting, naming the file (never its content).
    type: path
  application_name:
    description: The session's application_name in pg_stat_activity.
    type: str
    default: switchyard-db-migration
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg2 on the host that runs the module.
"""
