# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""unlisted_services: the services of a color's Compose files (on the controller) that the images
mapping does not name. With verification on, each would run the image its file names, unverified:
the release refuses them before anything changes. (Services that an `include:` brings are not read
here; compose_project's images_only refuses those at the deploy, still before the color is created.)"""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError


def unlisted_services(files, images):
    if not isinstance(images, dict):
        raise AnsibleFilterError(f"unlisted_services: images must be a mapping of service to image, got {images!r}")
    services = set()
    for path in files or []:
        try:
            with open(path, encoding="utf-8") as handle:
                doc = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleFilterError(f"unlisted_services: cannot read the Compose file {path}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("services") or {}, dict):
            raise AnsibleFilterError(f"unlisted_services: {path} is not a Compose file (no services mapping)")
        services.update(doc.get("services") or {})
    return sorted(services - set(images))


class FilterModule:
    def filters(self):
        return {"unlisted_services": unlisted_services}
