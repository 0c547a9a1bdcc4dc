# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""unlisted_services: the services of a color's Compose files (on the controller) that the images
mapping does not name. With verification on, each would run the image its file names, unverified:
the release refuses them before anything changes. (Services that an `include:` brings are not read
here; compose_project's images_only refuses those at the deploy, still before the color is created.)
A service in a profile is not one: the stack role enables no profile, so `up` never starts it - a
migration job service (profile "jobs") runs only through the compose_job runner, on the verified image
of its image_from service."""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError


class _ComposeLoader(yaml.SafeLoader):
    """Safe YAML that keeps the value of Compose's own tags (!reset, !override) instead of refusing them."""


def _keep_tagged(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_ComposeLoader.add_multi_constructor("!", _keep_tagged)


def unlisted_services(files, images):
    if not isinstance(images, dict):
        raise AnsibleFilterError(f"unlisted_services: images must be a mapping of service to image, got {images!r}")
    services, profiled = set(), set()
    for path in files or []:
        try:
            with open(path, encoding="utf-8") as handle:
                doc = yaml.load(handle, Loader=_ComposeLoader) or {}  # noqa: S506 - a SafeLoader
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleFilterError(f"unlisted_services: cannot read the Compose file {path}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("services") or {}, dict):
            raise AnsibleFilterError(f"unlisted_services: {path} is not a Compose file (no services mapping)")
        for name, definition in (doc.get("services") or {}).items():
            services.add(name)
            if isinstance(definition, dict) and definition.get("profiles"):
                profiled.add(name)  # a later file overriding other keys leaves its profiles as they are
    return sorted(services - profiled - set(images))


class FilterModule:
    def filters(self):
        return {"unlisted_services": unlisted_services}
