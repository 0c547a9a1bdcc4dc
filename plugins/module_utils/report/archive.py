# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The archive kept with a release report: the LB configuration as deployed, the Compose files and the
rendered override, the run's summary and the ledger entry - never a secret: files under a `secrets`
directory are left out, and the value of every env entry whose name looks secret is masked."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile

from ansible_collections.switchyard.release.plugins.module_utils.common.masking import MASK

# An env or YAML `NAME=value` / `NAME: value` whose name says it holds a secret.
SECRET_NAME_WORDS = ("password", "passwd", "secret", "token", "credential", "private", "api_key", "apikey")
ASSIGNMENT_RE = re.compile(r"^(\s*-?\s*[\"']?)([A-Za-z_][\w.-]*)([\"']?\s*[=:]\s*)(.+)$")


def is_secret_name(name, extra=()):
    lowered = name.lower()
    return any(word in lowered for word in SECRET_NAME_WORDS) or name in extra


def masked(text, secret_names=(), secret_values=()):
    """text with the value of every secret-named assignment masked, then each known secret value."""
    lines = []
    for line in text.splitlines(keepends=True):
        match = ASSIGNMENT_RE.match(line.rstrip("\n"))
        if match and is_secret_name(match.group(2), secret_names) and not match.group(4).startswith(("{", "[")):
            end = "\n" if line.endswith("\n") else ""
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}{MASK}{end}"
        lines.append(line)
    text = "".join(lines)
    for value in secret_values:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def is_secret_path(path):
    parts = os.path.normpath(path).split(os.sep)
    return "secrets" in parts or os.path.basename(path).startswith(".")


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def build_archive(dest, prefix, files, entry, run, secret_names=(), secret_values=()):
    """Write dest (tar.gz): each of files {archive name: host path} masked, the ledger entry and the run's
    summary. Returns {included: [names], excluded: [{path, why}]}."""
    included, excluded = [], []
    with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
        for name, path in sorted(files.items()):
            if is_secret_path(path):
                excluded.append({"path": path, "why": "a secret file"})
                continue
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except FileNotFoundError:
                excluded.append({"path": path, "why": "missing"})
                continue
            except UnicodeDecodeError:
                excluded.append({"path": path, "why": "not text"})
                continue
            _add(tar, f"{prefix}/{name}", masked(text, secret_names, secret_values).encode())
            included.append(name)
        for name, document in (("ledger-entry.json", entry), ("ansible-run.json", run)):
            text = masked(json.dumps(document, indent=2, sort_keys=True) + "\n", secret_names, secret_values)
            _add(tar, f"{prefix}/{name}", text.encode())
            included.append(name)
    os.chmod(dest, 0o600)
    return {"included": included, "excluded": excluded}
