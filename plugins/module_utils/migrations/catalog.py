# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrations directory: NNNN_name/{expand.sql, backfill.yml, contract.sql}, ordered by the
numeric prefix, each file with the sha256 checksum the history keeps."""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

VERSION_DIR_RE = re.compile(r"^(\d+)_([A-Za-z0-9_.-]+)$")
PHASE_FILES = {"expand": "expand.sql", "migrate": "backfill.yml", "contract": "contract.sql"}
BACKFILL_KEYS = {"table", "key", "set", "where", "batch_size"}


class CatalogError(SwitchyardError):
    """The migrations directory is not laid out as db_migration reads it."""


class Migration:
    """One phase file of one version."""

    def __init__(self, version, name, phase, path):
        self.version = version
        self.name = name
        self.phase = phase
        self.path = path
        with open(path, "rb") as handle:
            raw = handle.read()
        self.checksum = hashlib.sha256(raw).hexdigest()
        self.text = raw.decode("utf-8")

    def as_dict(self):
        return {"version": self.version, "name": self.name, "phase": self.phase, "file": self.path}


def load(path, phase, target=None):
    """The phase's migrations in version order, up to target (inclusive) when given."""
    if not os.path.isdir(path):
        raise CatalogError(f"path={path} is not a directory")
    found, seen = [], {}
    for entry in sorted(os.listdir(path)):
        match = VERSION_DIR_RE.match(entry)
        if not match or not os.path.isdir(os.path.join(path, entry)):
            continue
        version = int(match.group(1))
        if version in seen:
            raise CatalogError(f"version {version} appears twice: {seen[version]} and {entry}")
        seen[version] = entry
        if target is not None and version > target:
            continue
        file_path = os.path.join(path, entry, PHASE_FILES[phase])
        if os.path.isfile(file_path):
            found.append(Migration(version, match.group(2), phase, file_path))
    return sorted(found, key=lambda m: m.version)


def parse_backfill(migration, yaml_load):
    """backfill.yml -> dict with table, key, set, where, batch_size; errors name the file."""
    try:
        spec = yaml_load(migration.text) or {}
    except Exception as exc:  # the YAML library's own error type varies
        raise CatalogError(f"{migration.path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise CatalogError(f"{migration.path}: expected a mapping with keys {', '.join(sorted(BACKFILL_KEYS))}")
    unknown = sorted(set(spec) - BACKFILL_KEYS)
    missing = sorted({"table", "key", "set", "where"} - set(spec))
    if unknown or missing:
        raise CatalogError(
            f"{migration.path}: unknown key(s) {unknown or 'none'}, missing key(s) {missing or 'none'}; "
            f"allowed: {', '.join(sorted(BACKFILL_KEYS))}"
        )
    return spec
