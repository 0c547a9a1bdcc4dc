# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pinning every service of a project to an image digest, through a generated override file.

This replaces the runbook's `yq` step: the project files stay as written, and one generated
file layered last says exactly which image each service runs, and with which labels.
"""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.image_reference import ImageReference

OVERRIDE_MARKER = "x-switchyard-generated"


class PinningError(SwitchyardError):
    """An image that cannot be pinned by digest as asked."""


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
