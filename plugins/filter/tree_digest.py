# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tree_digest: one sha256 over a directory's files (relative paths and contents, in order), so a role
copies a directory to the Docker host only when something in it changed."""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleFilterError


def tree_digest(directory):
    digest = hashlib.sha256()
    try:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, directory).encode() + b"\0")
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    except OSError as exc:
        raise AnsibleFilterError(f"tree_digest: cannot read {directory}: {exc}") from None
    if not os.path.isdir(directory):
        raise AnsibleFilterError(f"tree_digest: {directory} is not a directory")
    return "sha256:" + digest.hexdigest()


class FilterModule:
    def filters(self):
        return {"tree_digest": tree_digest}
