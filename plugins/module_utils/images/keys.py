# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verification key, given as PEM text: checked before anything runs, and named by the sha256
of its DER form (SubjectPublicKeyInfo), the identity the ledger records."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters

PEM_RE = re.compile(r"-----BEGIN PUBLIC KEY-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----")


class PublicKey:
    def __init__(self, pem, der):
        self.pem = pem
        self.der = der

    @property
    def sha256(self):
        return hashlib.sha256(self.der).hexdigest()

    @classmethod
    def parse(cls, text, name="public_key"):
        """The one PEM public key in text; InvalidParameters (never echoing the text) otherwise."""
        text = (text or "").strip()
        if "PRIVATE KEY" in text:
            # Never echo it: it is a secret given where a public value was expected.
            raise InvalidParameters(f"{name} holds a private key; give the public key (for example cosign.pub)")
        matches = list(PEM_RE.finditer(text))
        if len(matches) != 1 or matches[0].group(0) != text:
            hint = ""
            if text.startswith(("/", "~", ".")) and "\n" not in text:
                hint = " (it looks like a path: give the key's text, for example lookup('file', path))"
            raise InvalidParameters(
                f"{name} must be one PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----){hint}"
            )
        try:
            der = base64.b64decode("".join(matches[0].group("body").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidParameters(f"{name} is not a PEM public key: its body is not base64 ({exc})") from exc
        # DER of a SubjectPublicKeyInfo is a SEQUENCE: tag 0x30.
        if len(der) < 32 or der[0] != 0x30:
            raise InvalidParameters(f"{name} is not a PEM public key: its body is not a DER SubjectPublicKeyInfo")
        return cls(text + "\n", der)
