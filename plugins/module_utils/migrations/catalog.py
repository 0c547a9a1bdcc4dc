# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrations directory: NNNN_name/{expand.sql, backfill.yml, contract.sql}, ordered by the
numeric prefix, each file with the sha256 checksum the history keeps.

Every version directory is listed (not probed with isfile), so a file the runner cannot read is an
error naming it, never a file silently skipped - a skipped file would look deleted or pending."""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

VERSION_DIR_RE = re.compile(r"^(\d+)_([A-Za-z0-9_.-]+)$")
PHASE_FILES = {"expand": "expand.sql", "migrate": "backfill.yml", "contract": "contract.sql"}
BACKFILL_KEYS = {"table", "key", "set", "where", "batch_size", "params"}


class CatalogError(SwitchyardError):
    """The migrations directory is not laid out as db_migration reads it, or cannot be read."""


def unreadable(path, exc):
    """A CatalogError for an OSError: the path, the system's reason, and what to do."""
    reason = exc.strerror or str(exc)
    uid = os.geteuid() if hasattr(os, "geteuid") else "?"
    return CatalogError(
        f"{path}: cannot read it ({reason}); nothing was run. Make the migrations directory and its files "
        f"readable by the user that runs db_migration (uid {uid}), or restore the path, then run again",
        path=str(path),
        errno=exc.errno,
    )


class Migration:
    """One phase file of one version."""

    def __init__(self, version, name, phase, path):
        self.version = version
        self.name = name
        self.phase = phase
        self.path = path
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise unreadable(path, exc) from exc
        self.checksum = hashlib.sha256(raw).hexdigest()
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc

    @property
    def label(self):
        """How messages name the version: its directory name."""
        return os.path.basename(os.path.dirname(self.path))

    def as_dict(self):
        return {"version": self.version, "name": self.name, "phase": self.phase, "file": self.path}


class VersionDir:
    """One NNNN_name directory and the phase files it holds (phase -> path)."""

    def __init__(self, version, name, path, files):
        self.version = version
        self.name = name
        self.path = path
        self.files = files

    @property
    def label(self):
        return os.path.basename(self.path)


def scan(path):
    """{version: VersionDir} of every version directory, whatever the target."""
    if not os.path.isdir(path):
        raise CatalogError(f"path={path} is not a directory")
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise unreadable(path, exc) from exc
    versions = {}
    for entry in entries:
        match = VERSION_DIR_RE.match(entry)
        directory = os.path.join(path, entry)
        if not match or not os.path.isdir(directory):
            continue
        version = int(match.group(1))
        if version in versions:
            raise CatalogError(f"version {version} appears twice: {versions[version].label} and {entry}")
        try:
            names = set(os.listdir(directory))
        except OSError as exc:
            raise unreadable(directory, exc) from exc
        files = {
            phase: os.path.join(directory, file_name) for phase, file_name in PHASE_FILES.items() if file_name in names
        }
        versions[version] = VersionDir(version, match.group(2), directory, files)
    return versions


def migrations(versions, phase, target=None):
    """The phase's migrations of scan()'s versions, in version order, up to target (inclusive)."""
    return [
        Migration(number, found.name, phase, found.files[phase])
        for number, found in sorted(versions.items())
        if phase in found.files and (target is None or number <= target)
    ]


def load(path, phase, target=None):
    """The phase's migrations in version order, up to target (inclusive) when given."""
    return migrations(scan(path), phase, target)


def parse_backfill(migration, yaml_load):
    """backfill.yml -> dict with table, key, set, where, batch_size, params; errors name the file."""
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
