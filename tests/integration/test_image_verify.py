"""switchyard.release.image_verify on the testbed's registry and Debian's cosign: the demo images the
testbed signed and attested pass; an unsigned image, one signed by another key, one without an SBOM
and a digest the registry lacks are refused, each named with what failed; check mode answers the same."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from support.cosign import PEM, V1
from support.modules import run_module
from support.testbed import MANIFEST_TYPES as MANIFESTS_ACCEPTED
from support.testbed import Testbed

from ansible_collections.switchyard.release.plugins.module_utils.images.cosign import (
    TIMED_OUT,
    CosignBackend,
    VerificationFailed,
)

pytestmark = pytest.mark.testbed

MISSING_DIGEST = "sha256:" + "5" * 64
MANIFESTS = {"Accept": MANIFESTS_ACCEPTED}


def key_text(path) -> str:
    return path.read_text()


def key_sha256(path) -> str:
    der = serialization.load_pem_public_key(path.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify(testbed: Testbed, images: dict, check: bool = False, key=None, **options) -> dict:
    args = {"images": images, "public_key": key_text(key or testbed.cosign_public_key), **options}
    result = run_module("image_verify", args, check=check)
    result.pop("invocation", None)
    return result


def failures(result: dict) -> list[tuple[str, str, str]]:
    assert result.get("failed"), result
    return [(f["service"], f["check"], f["reason"]) for f in result["failures"]]


def test_signed_and_attested_images_pass_with_the_registrys_digests(testbed: Testbed) -> None:
    images = {"api": testbed.image("demo-app:v1"), "worker": testbed.pinned("demo-app:v3")}
    result = verify(testbed, images, signatures=True, sbom=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    key = key_sha256(testbed.cosign_public_key)
    assert result["verified"] == {"signatures": True, "sbom": True, "key_sha256": key}
    for service, name in (("api", "demo-app:v1"), ("worker", "demo-app:v3")):
        entry = result["images"][service]
        # The digest is the one the registry itself serves for the tag (asked over HTTP here, not via Docker).
        assert entry["digest"] == testbed.registry_digest(testbed.image(name))
        assert entry["pinned"] == testbed.pinned(name) == result["pinned"][service]
        assert entry["reference"] == images[service]
        assert entry["signature"] == {"verified": True, "key_sha256": key}
        assert entry["sbom"]["type"] == "spdxjson" and entry["sbom"]["predicate_type"] == "https://spdx.dev/Document"
        assert len(entry["sbom"]["sha256"]) == 64
    assert result["images"]["api"]["sbom"]["sha256"] != result["images"]["worker"]["sbom"]["sha256"]
    # Check mode reads the same and answers the same.
    assert verify(testbed, images, check=True, signatures=True, sbom=True) == result


def test_a_tag_resolves_once_to_the_digest_the_registry_serves(testbed: Testbed) -> None:
    tag = testbed.image("demo-app:v2")
    result = verify(testbed, {"api": tag, "web": tag, "pinned": testbed.pinned("demo-app:v2")})
    assert not result.get("failed"), result.get("msg")
    served = testbed.registry_digest(tag)
    assert {e["digest"] for e in result["images"].values()} == {served}
    assert result["verified"] == {"signatures": False, "sbom": False, "key_sha256": None}
    assert result["images"]["api"]["signature"] == {"verified": False, "key_sha256": None}


@pytest.mark.parametrize(
    ("name", "options", "check", "reason", "cosign_says"),
    [
        ("demo-app:v2-unsigned", {"signatures": True}, "signature", "no signature", "no signatures found"),
        ("demo-app:v2-otherkey", {"signatures": True}, "signature", "wrong key", "no matching signatures"),
        ("demo-app:v2-otherkey", {"sbom": True}, "sbom", "wrong key", "accepted signatures do not match threshold"),
        ("demo-app:v2-nosbom", {"signatures": True, "sbom": True}, "sbom", "no SBOM", "no matching attestations"),
    ],
    ids=["unsigned", "other-key", "sbom-other-key", "no-sbom"],
)
def test_an_image_that_is_not_verified_is_refused(testbed, name, options, check, reason, cosign_says) -> None:
    images = {"api": testbed.image(name)}
    result = verify(testbed, images, **options)
    assert failures(result) == [("api", check, reason)]
    assert f"api ({testbed.image(name)} -> {testbed.pinned(name)}): {reason}" in result["msg"]
    assert cosign_says in result["msg"] and cosign_says in result["failures"][0]["stderr"]
    assert result["failures"][0]["pinned"] == testbed.pinned(name)
    # Check mode refuses the same way.
    again = verify(testbed, images, check=True, **options)
    assert again["msg"] == result["msg"] and failures(again) == failures(result)


def test_the_refusal_is_the_keys_the_other_key_verifies_its_image(testbed: Testbed) -> None:
    images = {"api": testbed.image("demo-app:v2-otherkey")}
    result = verify(testbed, images, key=testbed.cosign_other_public_key, signatures=True, sbom=True)
    assert not result.get("failed"), result.get("msg")
    assert result["verified"]["key_sha256"] == key_sha256(testbed.cosign_other_public_key)


def test_an_image_without_sbom_passes_when_no_sbom_is_required(testbed: Testbed) -> None:
    result = verify(testbed, {"api": testbed.image("demo-app:v2-nosbom")}, signatures=True, sbom=False)
    assert not result.get("failed"), result.get("msg")
    assert result["images"]["api"]["signature"]["verified"] is True and result["images"]["api"]["sbom"] is None


def test_sbom_types_choose_which_attestations_count(testbed: Testbed) -> None:
    v3 = verify(testbed, {"api": testbed.image("demo-app:v3")}, sbom=True, sbom_types=["cyclonedx"])
    assert not v3.get("failed"), v3.get("msg")
    assert v3["images"]["api"]["sbom"]["type"] == "cyclonedx"
    assert v3["images"]["api"]["sbom"]["predicate_type"] == "https://cyclonedx.org/bom"
    v1 = verify(testbed, {"api": testbed.image("demo-app:v1")}, sbom=True, sbom_types=["cyclonedx"])
    assert failures(v1) == [("api", "sbom", "no SBOM")]
    assert "none of the attestations matched the predicate type: cyclonedx" in v1["failures"][0]["stderr"]


def test_a_digest_missing_from_the_registry_is_refused_and_every_failure_is_listed(testbed: Testbed) -> None:
    repo = testbed.image("demo-app:v1").rsplit(":", 1)[0]
    missing = f"{repo}@{MISSING_DIGEST}"
    # The registry really lacks it.
    path = repo.split("/", 1)[1]
    asked = requests.head(
        f"http://{testbed.registry}/v2/{path}/manifests/{MISSING_DIGEST}", headers=MANIFESTS, timeout=5
    )
    assert asked.status_code == 404
    images = {"gone": missing, "ok": testbed.image("demo-app:v1"), "unsigned": testbed.image("demo-app:v2-unsigned")}
    result = verify(testbed, images, signatures=True)
    assert failures(result) == [("gone", "registry", "not in registry"), ("unsigned", "signature", "no signature")]
    assert result["msg"].startswith("image verification failed for 2 of 3 service(s): gone (")
    assert f"the registry has no {missing}" in result["msg"] and "manifest unknown" in result["msg"]
    assert result["images"]["gone"]["digest"] is None and result["images"]["ok"]["signature"]["verified"] is True
    # The preflight record fails on the registry alone, and is returned with the failure.
    record = result["record"]
    assert (record["name"], record["status"], record["limit"]) == (
        "images",
        "fail",
        "pinned and present in its registry",
    )
    assert record["value"] == {
        "gone": None,
        "ok": testbed.registry_digest(images["ok"]),
        "unsigned": testbed.registry_digest(images["unsigned"]),
    }
    assert record["reason"].startswith(f"gone ({missing}): not in registry") and "unsigned" not in record["reason"]
    again = verify(testbed, images, check=True, signatures=True)
    assert again["msg"] == result["msg"]


def test_bad_input_is_refused_before_the_registry_is_asked(testbed: Testbed) -> None:
    images = {"api": testbed.image("demo-app:v1")}
    no_key = run_module("image_verify", {"images": images, "signatures": True, "sbom": True})
    assert no_key["failed"] and no_key["msg"].startswith("signatures=true and sbom=true need public_key")
    path = run_module(
        "image_verify", {"images": images, "signatures": True, "public_key": str(testbed.cosign_public_key)}
    )
    assert path["failed"] and "it looks like a path" in path["msg"]
    assert "images" not in path or path["images"] == {}


def test_cosign_connects_to_nothing_but_the_registry(testbed: Testbed, tmp_path) -> None:
    """Offline: every connection cosign opens (seen by strace) goes to the registry; no transparency
    log, no TUF mirror, no DNS. (Without --insecure-ignore-tlog, cosign 2.5 looks up tuf-repo-cdn.sigstore.dev.)"""
    wrapper = tmp_path / "cosign"
    wrapper.write_text(
        f'#!/bin/sh\nexec strace -f -qq -e trace=connect -o "{tmp_path}/connect.$$.log" {shutil.which("cosign")} "$@"\n'
    )
    wrapper.chmod(0o755)
    result = verify(testbed, {"api": testbed.image("demo-app:v1")}, cosign_cli=str(wrapper), signatures=True, sbom=True)
    assert not result.get("failed"), result.get("msg")
    logs = sorted(tmp_path.glob("connect.*.log"))
    assert len(logs) == 2, "one trace per cosign run: verify and verify-attestation"
    host, port = testbed.registry.split(":")
    peers = set()
    for log in logs:
        peers |= set(re.findall(r"connect\(\d+, \{sa_family=(AF_INET6?), ([^}]*)\}", log.read_text()))
    assert peers == {("AF_INET", f'sin_port=htons({port}), sin_addr=inet_addr("{host}")')}, peers


def test_without_registry_check_the_registry_is_not_asked_and_the_check_is_skipped(testbed: Testbed) -> None:
    repo = testbed.image("demo-app:v1").rsplit(":", 1)[0]
    missing = f"{repo}@{MISSING_DIGEST}"
    images = {"gone": missing, "api": testbed.image("demo-app:v1")}
    result = run_module("image_verify", {"images": images, "registry_check": False})
    # A digest the registry lacks passes unchecked: nothing was asked; the tag is left for the deploy.
    assert not result.get("failed"), result.get("msg")
    assert result["pinned"] == images
    assert result["record"]["status"] == "skip" and result["record"]["value"] == {"gone": MISSING_DIGEST, "api": None}
    assert result["record"]["reason"].startswith("registry_check=false")
    refused = run_module(
        "image_verify",
        {
            "images": images,
            "registry_check": False,
            "signatures": True,
            "public_key": key_text(testbed.cosign_public_key),
        },
    )
    assert refused["failed"] and refused["msg"].startswith("registry_check=false cannot go with signatures=true")
    assert "record" not in refused


def test_a_private_key_given_as_public_key_appears_nowhere(testbed: Testbed) -> None:
    private = testbed.cosign_public_key.with_name("cosign.key").read_text()
    assert "PRIVATE KEY" in private
    images = {"api": testbed.image("demo-app:v1")}
    result = run_module("image_verify", {"images": images, "signatures": True, "public_key": private})
    assert result["failed"] and result["msg"].startswith("public_key holds a private key")
    assert result["invocation"]["module_args"]["public_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    said = json.dumps(result, ensure_ascii=False)
    lines = [line for line in private.splitlines() if line.strip()]
    assert len(lines) > 2 and not [line for line in lines if line in said]


class Subprocess:
    """The collection's CommandRunner interface over subprocess: cosign runs for real."""

    def run(self, args, what, check=True, data=None):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        return proc.returncode, proc.stdout, proc.stderr


def test_a_registry_that_never_answers_fails_at_the_timeout(tmp_path) -> None:
    """A registry that accepts connections and stays silent: cosign gives up at --timeout, and says so."""
    key = tmp_path / "cosign.pub"
    key.write_text(PEM)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        image = f"127.0.0.1:{silent.getsockname()[1]}/switchyard/demo-app@{V1.split('@')[1]}"
        cosign = CosignBackend(Subprocess(), shutil.which("cosign"), str(key), timeout=2)
        started = time.monotonic()
        with pytest.raises(VerificationFailed) as failed:
            cosign.verify_signature(image, V1.split("@")[1])
        took = time.monotonic() - started
    assert 2 <= took < 10, took
    assert (failed.value.check, failed.value.reason) == ("signature", TIMED_OUT)
    assert failed.value.detail == "cosign gave up after 2 s (timeout): the registry did not answer in time"
    assert "--timeout=2s" in failed.value.cmd and "context deadline exceeded" in failed.value.failure()["stderr"]
