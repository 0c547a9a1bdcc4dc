# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image_verify module: resolve every image once to the digest its registry serves (a digest
given is checked to exist there too), then verify each digest with cosign and a public key.

Every service is checked and every failure is reported in one error, so one run shows all that
must be fixed. Nothing is changed, in check mode or not: the digests returned are the ones to deploy.
The registry part is also the preflight check `images` (pinned and present in its registry): its
ledger record is returned, on failure too; with registry_check=false it is skipped and nothing is asked."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.image_reference import ImageReference
from ansible_collections.switchyard.release.plugins.module_utils.compose.registry import (
    DigestResolutionError,
    RegistryDigestResolver,
)
from ansible_collections.switchyard.release.plugins.module_utils.images.cosign import (
    SBOM_TYPES,
    CosignBackend,
    VerificationFailed,
)
from ansible_collections.switchyard.release.plugins.module_utils.images.keys import PublicKey

NOT_IN_REGISTRY = "not in registry"
REGISTRY_ERROR = "registry error"
# The preflight check this module is, as the ledger records it (see host/checks.py ledger_record).
RECORD_NAME = "images"
RECORD_LIMIT = "pinned and present in its registry"
NOT_CHECKED = "registry_check=false: the registry was not asked; a tag is returned as given, the deploy resolves it"


class ImageVerificationFailed(SwitchyardError):
    """At least one image failed; details carry every failure and what was verified."""


def validate(params):
    """The images parsed and the key, or InvalidParameters naming the parameter, before anything runs."""
    images = params["images"]
    if not images:
        raise InvalidParameters("images must name at least one service: {service: reference}")
    parsed = {}
    for service, text in images.items():
        if not isinstance(text, str):
            raise InvalidParameters(
                f"images.{service} must be an image reference (a string), not {type(text).__name__}"
            )
        try:
            ref = ImageReference.parse(text)
        except ValueError as exc:
            raise InvalidParameters(f"images.{service}: {exc}") from exc
        if ref.tag is None and ref.digest is None:
            raise InvalidParameters(
                f"images.{service}: {text!r} names neither a tag nor a digest; give repo:tag or repo@sha256:..."
            )
        parsed[service] = ref
    wants_key = [name for name in ("signatures", "sbom") if params[name]]
    if wants_key and not params["registry_check"]:
        asked = " and ".join(f"{name}=true" for name in wants_key)
        raise InvalidParameters(
            f"registry_check=false cannot go with {asked}: cosign verifies the digests in the registry - "
            "set registry_check=true, or signatures=false and sbom=false"
        )
    if params["timeout"] < 1:
        raise InvalidParameters(f"timeout must be a whole number of seconds, 1 or more, not {params['timeout']}")
    key = None
    if wants_key and not params["public_key"]:
        asked = " and ".join(f"{name}=true" for name in wants_key)
        verb = "needs" if len(wants_key) == 1 else "need"
        raise InvalidParameters(f"{asked} {verb} public_key (the PEM text of the cosign public key)")
    if params["public_key"]:
        key = PublicKey.parse(params["public_key"])
    if params["sbom"] and not params["sbom_types"]:
        raise InvalidParameters(f"sbom_types must name at least one of: {', '.join(SBOM_TYPES)}")
    return parsed, key


class ImageVerifyManager:
    def __init__(self, module, resolver=None, runner=None):
        self.module = module
        self.params = module.params
        self.resolver = resolver or RegistryDigestResolver(self.params["docker_host"])
        self.runner = runner or CommandRunner(module)
        self.result = {"changed": False, "images": {}, "pinned": {}}
        self.failures = []

    def cosign_cli(self):
        """The cosign executable, found before anything is resolved."""
        cli = self.params["cosign_cli"]
        path = cli if os.sep in cli else self.module.get_bin_path(cli)
        if not path or not os.access(path, os.X_OK):
            raise InvalidParameters(
                f"cosign_cli: {cli!r} is not an executable on the target; install cosign "
                "(Debian 13: apt install cosign) or set cosign_cli to its path"
            )
        return path

    # -- resolution ----------------------------------------------------------------------------
    def resolve_all(self, refs):
        """service -> digest, asking the registry once per distinct reference; None when it failed.
        With registry_check=false nothing is asked: a digest given is taken as given, a tag has none."""
        if not self.params["registry_check"]:
            return {service: ref.digest for service, ref in refs.items()}
        asked = {}
        digests = {}
        for service, ref in refs.items():
            # The registry is asked for the digest alone when there is one (a tag beside it is ignored, as by Docker).
            question = ImageReference(ref.name, None, ref.digest) if ref.pinned else ref
            key = str(question)
            if key not in asked:
                asked[key] = self.resolve(question)
            digest, failure = asked[key]
            digests[service] = digest
            if failure:
                self.fail(service, ref, None, failure)
        return digests

    def resolve(self, asked):
        """(digest, None) or (None, VerificationFailed): a digest given must exist in the registry too."""
        try:
            digest = self.resolver.resolve(asked)
        except DigestResolutionError as exc:
            # The Engine's own words ("manifest unknown", "connection refused"), without the request URL.
            cause = exc.__cause__
            said = getattr(cause, "explanation", None) or exc.msg
            if getattr(cause, "status_code", None) == 404:
                return None, VerificationFailed(
                    "registry", NOT_IN_REGISTRY, f"the registry has no {asked}", stderr=said
                )
            return None, VerificationFailed(
                "registry", REGISTRY_ERROR, f"the registry did not resolve {asked}", stderr=said
            )
        if asked.pinned and digest != asked.digest:
            detail = f"the registry serves {digest} for {asked}"
            return None, VerificationFailed("registry", NOT_IN_REGISTRY, detail)
        return digest, None

    # -- verification --------------------------------------------------------------------------
    def fail(self, service, ref, pinned, failure):
        self.failures.append({"service": service, "image": str(ref), "pinned": pinned, **failure.failure()})

    def verify(self, backend, service, ref, digest, entry):
        pinned = entry["pinned"]
        if self.params["signatures"]:
            try:
                backend.verify_signature(pinned, digest)
                entry["signature"]["verified"] = True
            except VerificationFailed as failure:
                self.fail(service, ref, pinned, failure)
        if self.params["sbom"]:
            try:
                entry["sbom"] = backend.verify_sbom(pinned, digest, self.params["sbom_types"])
            except VerificationFailed as failure:
                self.fail(service, ref, pinned, failure)

    def run(self):
        refs, key = validate(self.params)
        verifying = self.params["signatures"] or self.params["sbom"]
        cli = self.cosign_cli() if verifying else None
        digests = self.resolve_all(refs)
        # Known once the registry answered, and kept if a verification below fails or breaks.
        self.result["record"] = self.record(digests)
        for service, ref in refs.items():
            digest = digests[service]
            pinned = ref.pinned_to(digest) if digest else None
            if not self.params["registry_check"] and not pinned:
                pinned = str(ref)  # unchecked: the deploy resolves the tag
            self.result["images"][service] = {
                "reference": self.params["images"][service],
                "digest": digest,
                "pinned": pinned,
                "signature": {
                    "verified": False,
                    "key_sha256": key.sha256 if key and self.params["signatures"] else None,
                },
                "sbom": None,
            }
            if pinned:
                self.result["pinned"][service] = pinned
        if verifying:
            with self.key_file(key) as key_file:
                backend = CosignBackend(
                    self.runner, cli, key_file, self.params["timeout"], self.params["allow_insecure_registry"]
                )
                for service, ref in refs.items():
                    entry = self.result["images"][service]
                    if entry["digest"]:
                        self.verify(backend, service, ref, entry["digest"], entry)
        self.result["verified"] = {
            "signatures": bool(self.params["signatures"]) and not self.failures,
            "sbom": bool(self.params["sbom"]) and not self.failures,
            "key_sha256": key.sha256 if key and verifying else None,
        }
        if self.failures:
            order = list(refs)
            self.failures.sort(key=lambda f: order.index(f["service"]))  # stable: a service's checks stay in order
            self.result["failures"] = self.failures
            raise ImageVerificationFailed(self.message(), failures=self.failures)
        return self.result

    def record(self, digests):
        """The preflight check `images` as the ledger records it: pass, skip (registry_check=false) or fail."""
        record = {"name": RECORD_NAME, "status": "pass", "value": digests, "limit": RECORD_LIMIT}
        unresolved = [f for f in self.failures if f["check"] == "registry"]
        if not self.params["registry_check"]:
            record.update(status="skip", reason=NOT_CHECKED)
        elif unresolved:
            reasons = "; ".join(
                f"{f['service']} ({f['image']}): {f['reason']} - {f['detail']}"
                + (f" [registry: {f['stderr']}]" if f["stderr"] else "")
                for f in unresolved
            )
            record.update(status="fail", reason=reasons)
        return record

    def message(self):
        lines = []
        for f in self.failures:
            where = f" -> {f['pinned']}" if f["pinned"] else ""
            tail = f" [{'cosign' if f['check'] != 'registry' else 'registry'}: {f['stderr']}]" if f["stderr"] else ""
            lines.append(f"{f['service']} ({f['image']}{where}): {f['reason']} - {f['detail']}{tail}")
        services = len({f["service"] for f in self.failures})
        return f"image verification failed for {services} of {len(self.params['images'])} service(s): " + "; ".join(
            lines
        )

    @contextmanager
    def key_file(self, key):
        """The public key in a private temporary file for cosign (it reads keys from files), removed after."""
        fd, path = tempfile.mkstemp(prefix="cosign-", suffix=".pub", dir=self.module.tmpdir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(key.pem)
            yield path
        finally:
            os.unlink(path)
