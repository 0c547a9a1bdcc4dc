# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pinning every service of a project to an image digest, through a generated override file.

This replaces the runbook's `yq` step: the project files stay as written, and one generated
file layered last says exactly which image each service runs, and with which labels.
"""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.image_reference import ImageReference

# write_atomically lives in atomic_file; it is re-exported for the callers that import it from here.
__all__ = [
    "OVERRIDE_MARKER",
    "PinningError",
    "desired_references",
    "pin_references",
    "read_text",
    "render_override",
    "write_atomically",
]

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
