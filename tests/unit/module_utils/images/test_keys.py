"""The verification key given as PEM text: a public key is named by the sha256 of its DER form; a
private key, a path or anything else is refused before anything runs, without echoing it."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.cosign import PEM

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.images.keys import PublicKey


def test_a_cosign_public_key_is_named_by_the_sha256_of_its_der_form() -> None:
    key = PublicKey.parse(PEM)
    der = serialization.load_pem_public_key(PEM.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.sha256 == hashlib.sha256(der).hexdigest()
    assert key.pem == PEM.strip() + "\n"
    assert PublicKey.parse("\n  " + PEM + "\n\n").sha256 == key.sha256


def test_a_private_key_is_refused_without_being_echoed() -> None:
    private = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(InvalidParameters) as refused:
        PublicKey.parse(private)
    assert "public_key holds a private key" in refused.value.msg
    body = private.splitlines()[1]
    assert body not in refused.value.msg


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/etc/switchyard/cosign.pub", "it looks like a path"),
        ("", "must be one PEM public key"),
        (PEM + PEM, "must be one PEM public key"),
        ("garbage " + PEM, "must be one PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nnot*base64\n-----END PUBLIC KEY-----", "must be one PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----", "not a DER SubjectPublicKeyInfo"),
        ("-----BEGIN PUBLIC KEY-----\nQUJ\n-----END PUBLIC KEY-----", "not base64"),
    ],
)
def test_anything_but_one_pem_public_key_is_refused(text, says) -> None:
    with pytest.raises(InvalidParameters, match=says):
        PublicKey.parse(text)
