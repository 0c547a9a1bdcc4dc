# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""migration_files: the expand and backfill files of a migrations directory on the controller, by
relative path, with their text - what the preflight's database check needs to name the tables the
pending migrations touch, before the migrate role has copied anything to the Docker host."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import VERSION_DIR_RE

READ = ("expand.sql", "backfill.yml")


def migration_files(directory):
    if not directory:
        return {}
    try:
        versions = sorted(
            name
            for name in os.listdir(directory)
            if VERSION_DIR_RE.match(name) and os.path.isdir(os.path.join(directory, name))
        )
        files = {}
        for version in versions:
            for name in READ:
                path = os.path.join(directory, version, name)
                if os.path.isfile(path):
                    with open(path, encoding="utf-8") as handle:
                        files[f"{version}/{name}"] = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnsibleFilterError(f"migration_files: cannot read the migrations directory {directory}: {exc}") from None
    return files


class FilterModule:
    def filters(self):
        return {"migration_files": migration_files}
