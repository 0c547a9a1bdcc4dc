# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""schema_level: the schema level a release leaves - the migrations target when one is set, else the
highest version in the controller's migrations directory (0 without migrations)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import VERSION_DIR_RE


def schema_level(directory, target=""):
    if target not in (None, ""):
        try:
            return int(target)
        except (TypeError, ValueError):
            raise AnsibleFilterError(f"schema_level: the migrations target must be a number, got {target!r}") from None
    if not directory:
        return 0
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise AnsibleFilterError(f"schema_level: cannot list the migrations directory {directory}: {exc}") from None
    versions = [
        int(match.group(1))
        for match in map(VERSION_DIR_RE.match, names)
        if match and os.path.isdir(os.path.join(directory, match.group(0)))
    ]
    return max(versions, default=0)


class FilterModule:
    def filters(self):
        return {"schema_level": schema_level}
