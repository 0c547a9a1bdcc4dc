"""The cosign backend fed with output recorded from cosign 2.5.0 on the testbed: what verifies, the
reason of each refusal (no signature, another key, no SBOM), and output it cannot read."""

from __future__ import annotations

import base64
import json

import pytest
from support.cosign import V1, V1_DIGEST, V3, V3_DIGEST, RecordedRunner, recorded

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError
from ansible_collections.switchyard.release.plugins.module_utils.images.cosign import (
    NO_SBOM,
    NO_SIGNATURE,
    SBOM_PREDICATE_TYPES,
    TIMED_OUT,
    WRONG_KEY,
    CosignBackend,
    VerificationFailed,
    parse_attestations,
    parse_signatures,
    stderr_tail,
)

# Computed with jq when recorded: printf %s "$(... | jq -r .payload | base64 -d | jq -cS .predicate)" | sha256sum
SPDX_SHA256 = "d8a48e50e92da4adb6903642cab362fc61a23411177bd744b63a213dc58151ca"
CYCLONEDX_SHA256 = "d2b6bf7590caa2f85ec574a345fec397b5aa59a0cc29b6925ebe57f1a875fdcc"


def backend(answers, **options) -> CosignBackend:
    return CosignBackend(RecordedRunner(answers), "cosign", "/tmp/k.pub", **options)


def test_a_verified_signature_names_the_digest() -> None:
    _rc, out, _err = recorded("verify-signed")
    claims = parse_signatures(out, V1_DIGEST)
    assert claims[0]["critical"]["image"]["docker-manifest-digest"] == V1_DIGEST
    assert claims[0]["critical"]["identity"]["docker-reference"] == V1.split("@")[0]
    with pytest.raises(ValueError, match="names"):
        parse_signatures(out, V3_DIGEST)


@pytest.mark.parametrize(
    ("name", "digest", "kind", "expected"),
    [
        ("attestation-spdxjson", V1_DIGEST, "spdxjson", SPDX_SHA256),
        ("attestation-cyclonedx", V3_DIGEST, "cyclonedx", CYCLONEDX_SHA256),
    ],
)
def test_the_sbom_digest_is_the_predicates_canonical_json(name, digest, kind, expected) -> None:
    _rc, out, _err = recorded(name)
    assert parse_attestations(out, digest, SBOM_PREDICATE_TYPES[kind]) == [expected]
    statement = json.loads(base64.b64decode(json.loads(out.splitlines()[0])["payload"]))
    assert statement["predicateType"] == SBOM_PREDICATE_TYPES[kind]
    # A real SBOM of the image's packages, not a stub.
    packages = statement["predicate"].get("packages") or statement["predicate"].get("components")
    assert len(packages) > 100 and any(p["name"] == "python3" for p in packages)


def test_an_attestation_about_another_digest_or_of_another_type_is_refused() -> None:
    _rc, out, _err = recorded("attestation-spdxjson")
    with pytest.raises(ValueError, match="is about"):
        parse_attestations(out, V3_DIGEST, SBOM_PREDICATE_TYPES["spdxjson"])
    with pytest.raises(ValueError, match="no verified attestation"):
        parse_attestations(out, V1_DIGEST, SBOM_PREDICATE_TYPES["cyclonedx"])


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("verify-unsigned", "Error: no signatures found"),
        (
            "verify-other-key",
            "Error: no matching signatures: invalid signature when validating ASN.1 encoded signature",
        ),
        (
            "attestation-other-key",
            "Error: no matching attestations: accepted signatures do not match threshold, Found: 0, Expected 1",
        ),
    ],
)
def test_cosigns_last_words_without_its_fixed_warning(name, tail) -> None:
    rc, _out, err = recorded(name)
    assert rc != 0
    assert stderr_tail(err) == tail


@pytest.mark.parametrize(("recording", "reason"), [("verify-unsigned", NO_SIGNATURE), ("verify-other-key", WRONG_KEY)])
def test_a_refused_signature_says_why(recording, reason) -> None:
    cosign = backend({("verify", V1, None): recording})
    with pytest.raises(VerificationFailed) as failed:
        cosign.verify_signature(V1, V1_DIGEST)
    failure = failed.value.failure()
    assert failure["check"] == "signature" and failure["reason"] == reason
    assert failure["rc"] == recorded(recording)[0] and failure["cmd"][:2] == ["cosign", "verify"]
    assert "--insecure-ignore-tlog=true" in failure["cmd"] and "--offline=true" in failure["cmd"]


def test_a_signed_image_verifies() -> None:
    cosign = backend({("verify", V1, None): "verify-signed"})
    assert cosign.verify_signature(V1, V1_DIGEST)[0]["critical"]["image"]["docker-manifest-digest"] == V1_DIGEST


def test_any_one_sbom_type_suffices_in_the_order_given() -> None:
    cosign = backend(
        {
            ("verify-attestation", V1, "cyclonedx"): "attestation-other-type",
            ("verify-attestation", V1, "spdxjson"): "attestation-spdxjson",
        }
    )
    sbom = cosign.verify_sbom(V1, V1_DIGEST, ["cyclonedx", "spdxjson"])
    assert sbom == {"type": "spdxjson", "predicate_type": "https://spdx.dev/Document", "sha256": SPDX_SHA256}
    assert [c[c.index("--type") + 1] for c in cosign.runner.calls] == ["cyclonedx", "spdxjson"]
    # The first type that verifies ends the search.
    cosign = backend({("verify-attestation", V3, "cyclonedx"): "attestation-cyclonedx"})
    assert cosign.verify_sbom(V3, V3_DIGEST, ["cyclonedx", "spdxjson"])["sha256"] == CYCLONEDX_SHA256
    assert len(cosign.runner.calls) == 1


def test_no_sbom_names_every_type_tried_and_another_key_wins_over_none() -> None:
    cosign = backend(
        {
            ("verify-attestation", V1, "spdxjson"): "attestation-none",
            ("verify-attestation", V1, "cyclonedx"): "attestation-other-type",
        }
    )
    with pytest.raises(VerificationFailed) as failed:
        cosign.verify_sbom(V1, V1_DIGEST, ["spdxjson", "cyclonedx"])
    assert failed.value.reason == NO_SBOM
    assert failed.value.detail == "no SBOM attestation of type spdxjson or cyclonedx"
    cosign = backend(
        {
            ("verify-attestation", V1, "spdxjson"): "attestation-other-key",
            ("verify-attestation", V1, "cyclonedx"): "attestation-other-type",
        }
    )
    with pytest.raises(VerificationFailed) as failed:
        cosign.verify_sbom(V1, V1_DIGEST, ["spdxjson", "cyclonedx"])
    assert failed.value.reason == WRONG_KEY and failed.value.check == "sbom"
    assert "accepted signatures do not match threshold" in failed.value.failure()["stderr"]


def test_output_that_does_not_parse_fails_with_the_whole_evidence() -> None:
    class Garbage(RecordedRunner):
        def run(self, args, what, check=True, data=None):
            return 0, "Verification OK\n", "some warning"

    cosign = CosignBackend(Garbage({}), "cosign", "/tmp/k.pub")
    with pytest.raises(CommandError) as failed:
        cosign.verify_signature(V1, V1_DIGEST)
    result = failed.value.result()
    assert result["rc"] == 0 and result["stdout"] == "Verification OK\n" and result["stderr"] == "some warning"
    assert result["cmd"][:2] == ["cosign", "verify"] and "cannot read cosign's output" in result["msg"]
    with pytest.raises(CommandError, match="cannot read cosign's output"):
        cosign.verify_sbom(V1, V1_DIGEST, ["spdxjson"])


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({}, ["--offline=true", "--insecure-ignore-tlog=true", "--timeout=120s"]),
        (
            {"timeout": 7, "insecure_registry": True},
            [
                "--offline=true",
                "--insecure-ignore-tlog=true",
                "--timeout=7s",
                "--allow-insecure-registry=true",
                "--allow-http-registry=true",
            ],
        ),
    ],
)
def test_the_command_line_carries_the_timeout_and_the_insecure_registry_flags_only_when_asked(options, flags) -> None:
    cosign = backend(
        {("verify", V1, None): "verify-signed", ("verify-attestation", V1, "spdxjson"): "attestation-spdxjson"},
        **options,
    )
    cosign.verify_signature(V1, V1_DIGEST)
    cosign.verify_sbom(V1, V1_DIGEST, ["spdxjson"])
    assert cosign.runner.calls == [
        ["cosign", "verify", "--key", "/tmp/k.pub", *flags, V1],
        ["cosign", "verify-attestation", "--key", "/tmp/k.pub", "--type", "spdxjson", *flags, V1],
    ]


def test_a_registry_that_does_not_answer_in_time_is_a_timeout_and_no_other_type_is_tried() -> None:
    cosign = backend({("verify", V1, None): "verify-timeout"}, timeout=2)
    with pytest.raises(VerificationFailed) as failed:
        cosign.verify_signature(V1, V1_DIGEST)
    assert (failed.value.check, failed.value.reason) == ("signature", TIMED_OUT)
    assert failed.value.detail == "cosign gave up after 2 s (timeout): the registry did not answer in time"
    assert "context deadline exceeded" in failed.value.failure()["stderr"]
    cosign = backend({("verify-attestation", V1, "spdxjson"): "attestation-timeout"}, timeout=2)
    with pytest.raises(VerificationFailed) as failed:
        cosign.verify_sbom(V1, V1_DIGEST, ["spdxjson", "cyclonedx"])
    assert (failed.value.check, failed.value.reason) == ("sbom", TIMED_OUT)
    assert len(cosign.runner.calls) == 1  # cyclonedx would have waited as long again
