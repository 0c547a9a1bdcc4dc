# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pinning every service of a project to an image digest, through a generated override file.

This replaces the runbook's `yq` step: the project files stay as written, and one generated
file layered last says exactly which image each service runs, and with which labels.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible_collections.switchyard.release.plugins.module_utils.image_reference import ImageReference

OVERRIDE_MARKER = "x-switchyard-generated"


class PinningError(Exception):
    pass


def desired_references(config, images):
    """service -> reference text: the images option first, then the project's own image."""
    refs = {}
    for service, definition in sorted(config.get("services", {}).items()):
        ref = images.get(service) or definition.get("image")
        if not ref:
            raise PinningError(
                f"service {service!r} has no image (it is only built): give it one in the images option, "
                "releases run pinned images, not local builds"
            )
        refs[service] = ref
    return refs


def pin_references(refs, resolver, resolve_digests, require_digest):
    """service -> digest-pinned reference; tags resolved through the registry when allowed."""
    pinned = {}
    for service, text in refs.items():
        try:
            ref = ImageReference.parse(text)
        except ValueError as exc:
            raise PinningError(f"service {service!r}: {exc}") from exc
        if ref.pinned:
            pinned[service] = ref.pinned_to(ref.digest)
        elif resolve_digests:
            pinned[service] = ref.pinned_to(resolver.resolve(ref))
        elif require_digest:
            raise PinningError(
                f"service {service!r} uses {text!r}, which is not pinned by digest: use repo@sha256:..., "
                "or set resolve_digests=true, or require_digest=false"
            )
        else:
            pinned[service] = text
    return pinned


def render_override(pinned, labels):
    """The override file's text: JSON, which Compose reads as YAML, stable for comparison."""
    services = {}
    for service, ref in sorted(pinned.items()):
        services[service] = {"image": ref}
        if labels:
            services[service]["labels"] = dict(sorted(labels.items()))
    doc = {OVERRIDE_MARKER: "by switchyard.release.compose_project; do not edit", "services": services}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomically(path, text, mode=0o644, like=None):
    """Write text to path through a temporary file in the same directory and a rename.

    With like, the new file takes the mode, owner and group of that existing file (a process in a
    container, under another uid, must still read it).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".switchyard-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if like and os.path.exists(like):
            st = os.stat(like)
            os.chmod(tmp, st.st_mode & 0o7777)
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
