"""image_verify's manager: bad input refused before anything is asked, each reference resolved once,
every service checked and every failure in one error; fed with recorded cosign output."""

from __future__ import annotations

import os

import pytest
from support.cosign import PEM, V1, V1_DIGEST, RecordedRunner

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.compose.registry import DigestResolutionError
from ansible_collections.switchyard.release.plugins.module_utils.images.verify import (
    ImageVerificationFailed,
    ImageVerifyManager,
    validate,
)

REPO = V1.split("@")[0]
MISSING = "sha256:" + "1" * 64


def params(**overrides) -> dict:
    base = {
        "images": {"api": f"{REPO}:v1"},
        "docker_host": None,
        "registry_check": True,
        "signatures": False,
        "sbom": False,
        "sbom_types": ["spdxjson", "cyclonedx"],
        "public_key": None,
        "timeout": 120,
        "allow_insecure_registry": False,
        "cosign_cli": "/bin/true",
    }
    return {**base, **overrides}


class Module:
    def __init__(self, tmpdir, **overrides):
        self.params = params(**overrides)
        self.tmpdir = str(tmpdir)

    def get_bin_path(self, name):
        return None


class NotFound(Exception):
    status_code = 404
    explanation = "manifest unknown: manifest unknown"


class Registry:
    """Tags to digests, as the registry serves them; a digest it lacks is a 404."""

    def __init__(self, tags, digests):
        self.tags = tags
        self.digests = digests
        self.asked: list[str] = []

    def resolve(self, reference):
        self.asked.append(str(reference))
        found = self.digests if reference.digest else self.tags
        key = reference.digest or reference.tag
        if key not in found:
            try:
                raise NotFound()
            except NotFound as exc:
                raise DigestResolutionError(f"the registry did not resolve {reference}: 404") from exc
        return reference.digest or found[key]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"signatures": True}, "signatures=true needs public_key"),
        ({"signatures": True, "sbom": True}, "signatures=true and sbom=true need public_key"),
        (
            {"sbom": True, "public_key": PEM, "sbom_types": []},
            "sbom_types must name at least one of: spdxjson, cyclonedx",
        ),
        ({"public_key": "ssh-ed25519 AAAA"}, "public_key must be one PEM public key"),
        ({"images": {}}, "images must name at least one service"),
        ({"images": {"api": "shop/api"}}, "images.api: 'shop/api' names neither a tag nor a digest"),
        ({"images": {"api": 3}}, "images.api must be an image reference"),
        ({"images": {"api": "shop/api@sha256:xyz"}}, "images.api: not a valid digest"),
        (
            {"registry_check": False, "sbom": True, "public_key": PEM},
            "registry_check=false cannot go with sbom=true: .* set registry_check=true, or signatures=false and "
            "sbom=false",
        ),
        (
            {"registry_check": False, "signatures": True, "sbom": True, "public_key": PEM},
            "registry_check=false cannot go with signatures=true and sbom=true",
        ),
        ({"timeout": 0}, "timeout must be a whole number of seconds, 1 or more, not 0"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(overrides, says) -> None:
    with pytest.raises(InvalidParameters, match=says):
        validate(params(**overrides))


def test_a_missing_cosign_is_refused_before_the_registry_is_asked(tmp_path) -> None:
    registry = Registry({"v1": V1_DIGEST}, {V1_DIGEST})
    module = Module(tmp_path, signatures=True, public_key=PEM, cosign_cli="/nonexistent/cosign")
    with pytest.raises(InvalidParameters, match="cosign_cli: '/nonexistent/cosign' is not an executable"):
        ImageVerifyManager(module, resolver=registry, runner=RecordedRunner({})).run()
    assert registry.asked == []


def test_each_reference_is_resolved_once_and_a_digest_must_exist(tmp_path) -> None:
    registry = Registry({"v1": V1_DIGEST}, {V1_DIGEST})
    images = {"api": f"{REPO}:v1", "worker": f"{REPO}:v1", "pinned": V1, "tagged": f"{REPO}:v9@{V1_DIGEST}"}
    result = ImageVerifyManager(Module(tmp_path, images=images), resolver=registry, runner=RecordedRunner({})).run()
    assert registry.asked == [f"{REPO}:v1", V1]  # the tag beside a digest is ignored, as Docker does
    assert result["pinned"] == dict.fromkeys(images, V1)
    assert result["changed"] is False
    assert result["verified"] == {"signatures": False, "sbom": False, "key_sha256": None}
    assert result["images"]["pinned"]["reference"] == V1 and result["images"]["api"]["sbom"] is None
    assert result["record"] == {
        "name": "images",
        "status": "pass",
        "value": dict.fromkeys(images, V1_DIGEST),
        "limit": "pinned and present in its registry",
    }


def test_without_registry_check_nothing_is_asked_and_the_check_is_recorded_as_skipped(tmp_path) -> None:
    registry = Registry({}, set())  # it would answer 404 to anything
    images = {"api": f"{REPO}:v1", "gone": f"{REPO}@{MISSING}", "tagged": f"{REPO}:v9@{V1_DIGEST}"}
    module = Module(tmp_path, images=images, registry_check=False)
    result = ImageVerifyManager(module, resolver=registry, runner=RecordedRunner({})).run()
    assert registry.asked == []
    # A digest is taken as given (unchecked); a tag is returned as given, for the deploy to resolve.
    assert result["pinned"] == {"api": f"{REPO}:v1", "gone": f"{REPO}@{MISSING}", "tagged": V1}
    assert result["images"]["api"]["digest"] is None and result["images"]["gone"]["digest"] == MISSING
    record = result["record"]
    assert record["status"] == "skip" and record["value"] == {"api": None, "gone": MISSING, "tagged": V1_DIGEST}
    assert record["reason"].startswith("registry_check=false: the registry was not asked")


def test_every_service_is_checked_and_every_failure_is_in_one_error(tmp_path) -> None:
    registry = Registry({"v1": V1_DIGEST}, {V1_DIGEST})
    runner = RecordedRunner(
        {
            ("verify", V1, None): "verify-other-key",
            ("verify-attestation", V1, "spdxjson"): "attestation-none",
        }
    )
    module = Module(
        tmp_path,
        images={"gone": f"{REPO}@{MISSING}", "api": f"{REPO}:v1"},
        signatures=True,
        sbom=True,
        sbom_types=["spdxjson"],
        public_key=PEM,
    )
    modes = []

    class Watching(RecordedRunner):
        def run(self, args, what, check=True, data=None):
            modes.append(os.stat(args[args.index("--key") + 1]).st_mode & 0o777)
            return super().run(args, what, check, data)

    runner = Watching(runner.answers)
    manager = ImageVerifyManager(module, resolver=registry, runner=runner)
    with pytest.raises(ImageVerificationFailed) as failed:
        manager.run()
    failures = manager.result["failures"]
    assert [(f["service"], f["check"], f["reason"]) for f in failures] == [
        ("gone", "registry", "not in registry"),
        ("api", "signature", "wrong key"),
        ("api", "sbom", "no SBOM"),
    ]
    msg = failed.value.msg
    assert msg.startswith("image verification failed for 2 of 2 service(s): gone (")
    assert f"api ({REPO}:v1 -> {V1}): wrong key" in msg and "[cosign: Error: no matching signatures" in msg
    assert "manifest unknown" in msg
    # cosign read the key from a private file (0600 while it ran), removed after.
    assert modes == [0o600, 0o600]
    key_file = runner.calls[0][runner.calls[0].index("--key") + 1]
    assert os.path.dirname(key_file) == str(tmp_path) and not os.path.exists(key_file)
    assert manager.result["images"]["gone"]["digest"] is None and "gone" not in manager.result["pinned"]
    # The preflight record fails on the registry alone (api's signature is not its business), and is returned.
    record = manager.result["record"]
    assert (record["status"], record["value"]) == ("fail", {"gone": None, "api": V1_DIGEST})
    assert record["reason"] == (
        f"gone ({REPO}@{MISSING}): not in registry - the registry has no {REPO}@{MISSING} "
        "[registry: manifest unknown: manifest unknown]"
    )
    # cosign ran with the timeout, and without the insecure-registry flags unless asked.
    assert all("--timeout=120s" in call and "--allow-http-registry=true" not in call for call in runner.calls)
