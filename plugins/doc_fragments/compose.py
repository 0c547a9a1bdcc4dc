# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/compose/options.py: project_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project:
    description: The Compose project name, for example C(shop-green).
    type: str
    required: true
  files:
    description:
      - Compose files on the target, layered in order.
      - Required wherever containers are created from them (M(switchyard.release.compose_project) says for which
        of its states).
    type: list
    elements: path
    default: []
  project_dir:
    description: The project directory (C(--project-directory)); defaults to the first file's directory.
    type: path
  env_files:
    description: Environment files (C(--env-file)), in order.
    type: list
    elements: path
    default: []
  profiles:
    description: Compose profiles to enable.
    type: list
    elements: str
    default: []
  docker_host:
    description: The Docker daemon to talk to (C(DOCKER_HOST)); the local socket when omitted.
    type: str
  docker_cli:
    description: The docker client executable.
    type: path
    default: docker
  resolve_digests:
    description: Turn tags into C(repo@sha256:...) by asking the registry, before starting anything.
    type: bool
    default: true
  require_digest:
    description: Refuse any service whose image is not pinned by digest after resolution, naming the service.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait until every service with a healthcheck is healthy and the others run.
    type: int
    default: 120
  stop_timeout:
    description: Seconds a container gets to stop before it is killed (stop, down, restart).
    type: int
    default: 15
  labels:
    description: Extra labels on every container of the project (release id, color), so state can be read back.
    type: dict
    default: {}
"""
