# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tag -> digest, asked of the registry through the Docker Engine (its registry settings,
mirrors and the client's credentials apply), without pulling anything.

The Docker SDK is imported only when a tag is resolved: importing it costs compose_project about
0.14 s per call, and a release gives digests (a recreate's outage holds one such call)."""

from __future__ import annotations

import importlib.util

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

HAS_DOCKER_SDK = importlib.util.find_spec("docker") is not None
# The module reports it with missing_required_lib.
DOCKER_SDK_IMPORT_ERROR = None if HAS_DOCKER_SDK else "ModuleNotFoundError: No module named 'docker'"


class DigestResolutionError(SwitchyardError):
    """The registry did not say which digest a tag points to."""


class RegistryDigestResolver:
    def __init__(self, docker_host=None, timeout=30):
        self.docker_host = docker_host
        self.timeout = timeout
        self._client = None

    def client(self):
        if self._client is None:
            import docker  # pylint: disable=import-outside-toplevel  # only when a tag is resolved

            kwargs = {"timeout": self.timeout}
            if self.docker_host:
                kwargs["base_url"] = self.docker_host
            self._client = docker.APIClient(**kwargs)
        return self._client

    def resolve(self, reference):
        """The digest the registry serves for reference (an ImageReference with a tag)."""
        try:
            from docker.errors import DockerException  # pylint: disable=import-outside-toplevel
        except ImportError as exc:
            raise DigestResolutionError(
                f"resolving {reference} to a digest needs the Docker SDK for Python (docker) on the target ({exc}); "
                "install it, or give images by digest"
            ) from exc
        try:
            info = self.client().inspect_distribution(str(reference))
        except DockerException as exc:
            raise DigestResolutionError(f"the registry did not resolve {reference}: {exc}") from exc
        return info["Descriptor"]["digest"]
