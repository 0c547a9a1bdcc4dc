# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tag -> digest, asked of the registry through the Docker Engine (its registry settings,
mirrors and the client's credentials apply), without pulling anything."""

from __future__ import annotations

import traceback

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

try:
    import docker
    from docker.errors import DockerException

    HAS_DOCKER_SDK = True
    DOCKER_SDK_IMPORT_ERROR = None
except ImportError:  # the module reports it with missing_required_lib
    HAS_DOCKER_SDK = False
    DOCKER_SDK_IMPORT_ERROR = traceback.format_exc()


class DigestResolutionError(SwitchyardError):
    """The registry did not say which digest a tag points to."""


class RegistryDigestResolver:
    def __init__(self, docker_host=None, timeout=30):
        self.docker_host = docker_host
        self.timeout = timeout
        self._client = None

    def client(self):
        if self._client is None:
            kwargs = {"timeout": self.timeout}
            if self.docker_host:
                kwargs["base_url"] = self.docker_host
            self._client = docker.APIClient(**kwargs)
        return self._client

    def resolve(self, reference):
        """The digest the registry serves for reference (an ImageReference with a tag)."""
        if not HAS_DOCKER_SDK:
            raise DigestResolutionError(
                f"resolving {reference} to a digest needs the Docker SDK for Python (docker) on the target; "
                "install it, or give images by digest"
            )
        try:
            info = self.client().inspect_distribution(str(reference))
        except DockerException as exc:
            raise DigestResolutionError(f"the registry did not resolve {reference}: {exc}") from exc
        return info["Descriptor"]["digest"]
