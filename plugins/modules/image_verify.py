#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_verify
short_description: Resolve images to their registry digests once, and verify their cosign signatures and SBOMs
version_added: 0.2.0
description:
  - Resolves every image of O(images) to the digest its registry serves, once, through the Docker Engine (its
    registry settings and credentials apply; nothing is pulled). An image given by digest is checked to exist in its
    registry too. The digests returned (RV(pinned)) are the ones to deploy, record and roll back to.
  - That resolution is the preflight check C(images) (every image pinned and present in its registry); its ledger
    record is RV(record). With O(registry_check=false) the registry is not asked at all.
  - With O(signatures=true), every digest must carry a cosign signature that verifies with O(public_key).
  - With O(sbom=true), every digest must carry an SBOM attestation (one of O(sbom_types)) signed with O(public_key);
    the SBOM's type and the sha256 of its predicate are returned.
  - Verification is offline (C(cosign --offline=true --insecure-ignore-tlog=true)) - the key alone decides, no
    transparency log is asked, and nothing is sent anywhere but to the images' registries.
  - Every service is checked; the task fails once, naming each service, its image, what failed (not in registry,
    no signature, wrong key, no SBOM, timeout) and cosign's last words.
  - Changes nothing, in check mode too.
author:
  - Switchyard developers (@switchyard)
requirements:
  - The Docker SDK for Python (C(docker) >= 7) on the target, and a Docker Engine that can reach the registries.
  - cosign (2.x; Debian 13 packages it) on the target when O(signatures=true) or O(sbom=true).
extends_documentation_fragment:
  - switchyard.release.attributes
attributes:
  check_mode:
    description: Resolves and verifies as in a run; it never changes anything.
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
options:
  images:
    description:
      - Service name to image reference - C(registry/repo:tag), C(registry/repo@sha256:...), or both (the digest wins,
        as with Docker). A reference must name a tag or a digest.
    type: dict
    required: true
  docker_host:
    description: The Docker daemon that asks the registries (C(DOCKER_HOST)); the local socket when omitted.
    type: str
  registry_check:
    description:
      - Resolve every image through its registry (a digest given must exist there). With V(false) nothing is asked
        of the registry - a reference by digest is returned pinned as given (unchecked), a tag is returned as given
        (RV(pinned) is then the tag; the deploy resolves it) - and RV(record) says the check was skipped.
      - V(false) is refused with O(signatures=true) or O(sbom=true) - verification reads the registry.
    type: bool
    default: true
  signatures:
    description: Every digest must carry a cosign signature that verifies with O(public_key).
    type: bool
    default: false
  sbom:
    description:
      - Every digest must carry an SBOM attestation of one of O(sbom_types), signed with O(public_key).
    type: bool
    default: false
  sbom_types:
    description:
      - The SBOM attestation types accepted (cosign's C(--type) names), tried in order; any one suffices.
    type: list
    elements: str
    choices: [spdxjson, cyclonedx]
    default: [spdxjson, cyclonedx]
  public_key:
    description:
      - The cosign public key, as PEM text (C(-----BEGIN PUBLIC KEY-----)), not a path - for example
        C("{{ lookup('file', 'cosign.pub') }}"). It is written to a private temporary file for cosign, removed after.
      - Required with O(signatures=true) or O(sbom=true).
      - Never logged (a private key given here by mistake must not show in the task's arguments); a private key is
        refused without being echoed.
    type: str
  timeout:
    description:
      - Seconds each cosign run may take (cosign's C(--timeout)); a registry that does not answer in time fails the
        image with reason C(timeout) instead of stalling the run.
    type: int
    default: 120
  allow_insecure_registry:
    description:
      - Let cosign talk to registries over plain HTTP or with a TLS certificate it cannot verify (cosign's
        C(--allow-insecure-registry) and C(--allow-http-registry)). For registries the Docker Engine already trusts
        through its own C(insecure-registries) setting - the Engine resolves the digests, but cosign talks to the
        registry directly and does not read that setting. A registry on C(127.0.0.1) or C(localhost) is reached over
        plain HTTP by cosign without it.
    type: bool
    default: false
  cosign_cli:
    description: The cosign executable on the target.
    type: path
    default: cosign
seealso:
  - module: switchyard.release.compose_project
"""

EXAMPLES = r"""
- name: Resolve the candidate's images once and verify them before anything changes
  switchyard.release.image_verify:
    images:
      api: registry.example.com/shop/api:v2
      worker: registry.example.com/shop/worker@sha256:6704f4a00a7577d2e061a859f831e982eeaac58d493a07a0ec0268baf5a96d1f
    signatures: true
    sbom: true
    public_key: "{{ lookup('file', 'files/cosign.pub') }}"
  register: verified

- name: Deploy exactly the digests that were verified
  switchyard.release.compose_project:
    project: shop-green
    files: [/srv/shop/compose.yaml]
    images: "{{ verified.pinned }}"

- name: The preflight check images turned off - nothing asked of the registry, recorded as skipped
  switchyard.release.image_verify:
    images: {api: registry.example.com/shop/api:v2}
    registry_check: "{{ 'images' not in switchyard_preflight_skip | default([]) }}"
  register: images_check    # images_check.record -> the ledger's preflight record

- name: Only resolve (and check that a digest exists in its registry)
  switchyard.release.image_verify:
    images: {api: registry.example.com/shop/api@sha256:6704f4a00a7577d2e061a859f831e982eeaac58d493a07a0ec0268baf5a96d1f}
"""

RETURN = r"""
images:
  description:
    - Per service - C(reference) (as given), C(digest) (what the registry serves; null when it has none), C(pinned)
      (C(repo@digest)), C(signature) (C(verified), C(key_sha256) - the sha256 of the key's DER form, null unless
      O(signatures=true)) and C(sbom) (C(type), C(predicate_type), C(sha256) - of the predicate as canonical JSON,
      what C(jq -cS .predicate) prints; null unless O(sbom=true) and verified).
  returned: always
  type: dict
  sample:
    api:
      reference: 127.0.0.1:5000/switchyard/demo-app:v1
      digest: sha256:350f0848b4f6e67a6d0b34cd3142c245d05803ed7b7deca95ed4884001822e01
      pinned: 127.0.0.1:5000/switchyard/demo-app@sha256:350f0848b4f6e67a6d0b34cd3142c245d05803ed7b7deca95ed4884001822e01
      signature: {verified: true, key_sha256: 9f2c7d0e4b1a3c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5}
      sbom: {type: spdxjson, predicate_type: "https://spdx.dev/Document",
             sha256: 0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091}
pinned:
  description:
    - Service to C(repo@digest), for every image the registry resolved - what to deploy. With
      O(registry_check=false), a tag is returned as given.
  returned: always
  type: dict
  sample:
    api: 127.0.0.1:5000/switchyard/demo-app@sha256:350f0848b4f6e67a6d0b34cd3142c245d05803ed7b7deca95ed4884001822e01
verified:
  description:
    - What was verified for every image - C(signatures) and C(sbom) (true when asked and every image passed) and
      C(key_sha256) (the key's identity, null when nothing was verified).
  returned: always
  type: dict
  sample: {signatures: true, sbom: true, key_sha256: 9f2c7d0e4b1a3c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5}
record:
  description:
    - The preflight check C(images) as the ledger records it - C(name), C(status) (V(pass), V(skip) with
      O(registry_check=false), V(fail) when an image is not in its registry or the registry failed), C(value)
      (service to digest, null when none), C(limit), and C(reason) when it was skipped or failed.
    - Returned on failure too (unless the parameters were refused).
  returned: always
  type: dict
  sample:
    name: images
    status: pass
    value: {api: "sha256:350f0848b4f6e67a6d0b34cd3142c245d05803ed7b7deca95ed4884001822e01"}
    limit: pinned and present in its registry
failures:
  description:
    - On failure, every failed check - C(service), C(image), C(pinned), C(check) (registry, signature, sbom),
      C(reason) (not in registry, registry error, no signature, wrong key, no SBOM, timeout, cosign error), C(detail),
      C(cmd), C(rc) and C(stderr) (cosign's last lines).
  returned: failure
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.images.cosign import SBOM_TYPES
from ansible_collections.switchyard.release.plugins.module_utils.images.verify import ImageVerifyManager

ARGUMENT_SPEC = {
    "images": {"type": "dict", "required": True},
    "docker_host": {"type": "str"},
    "registry_check": {"type": "bool", "default": True},
    "signatures": {"type": "bool", "default": False},
    "sbom": {"type": "bool", "default": False},
    "sbom_types": {"type": "list", "elements": "str", "choices": list(SBOM_TYPES), "default": list(SBOM_TYPES)},
    "public_key": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 120},
    "allow_insecure_registry": {"type": "bool", "default": False},
    "cosign_cli": {"type": "path", "default": "cosign"},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, ImageVerifyManager)


if __name__ == "__main__":
    main()
