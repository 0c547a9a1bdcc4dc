# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cosign behind a small backend: verify an image's signature and its SBOM attestation with a key,
offline (no transparency log, nothing fetched but from the image's registry).

cosign says why a verification failed only in its stderr; the reasons a release acts on (no
signature, another key, no SBOM) are read from there, and its JSON output is checked again here
(the claims name the very digest that was asked)."""

from __future__ import annotations

import base64
import hashlib
import json

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError

# cosign's predicate type names -> the predicateType URIs their in-toto statements carry.
SBOM_PREDICATE_TYPES = {
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
}
SBOM_TYPES = tuple(SBOM_PREDICATE_TYPES)
# Flags every verification takes: the key alone decides, nothing goes to a transparency log.
OFFLINE = ("--offline=true", "--insecure-ignore-tlog=true")
# With allow_insecure_registry: TLS not verified, and plain HTTP accepted (cosign 2.5's names for both).
INSECURE_REGISTRY = ("--allow-insecure-registry=true", "--allow-http-registry=true")
# What cosign (Go's context) says when its --timeout ran out, whatever it was waiting for.
DEADLINE = "context deadline exceeded"

# What failed, as the failure's reason says it (the registry's reasons are the manager's).
NO_SIGNATURE = "no signature"
WRONG_KEY = "wrong key"
NO_SBOM = "no SBOM"
TIMED_OUT = "timeout"
COSIGN_ERROR = "cosign error"


class VerificationFailed(Exception):
    """One image failed one check; the manager gathers these and reports them all at once."""

    def __init__(self, check, reason, detail, cmd=None, rc=None, stderr=""):
        super().__init__(f"{check}: {reason}: {detail}")
        self.check = check
        self.reason = reason
        self.detail = detail
        self.cmd = cmd
        self.rc = rc
        self.stderr = stderr

    def failure(self):
        return {
            "check": self.check,
            "reason": self.reason,
            "detail": self.detail,
            "cmd": self.cmd,
            "rc": self.rc,
            "stderr": stderr_tail(self.stderr),
        }


def stderr_tail(stderr, lines=3, limit=600):
    """cosign's last words, without its fixed warning about skipping the transparency log."""
    kept = [
        line.strip()
        for line in (stderr or "").splitlines()
        if line.strip() and not line.startswith("WARNING: Skipping tlog verification")
    ]
    # cosign prints "Error: X" then "error during command execution: X": one is enough.
    if len(kept) >= 2 and kept[-1].startswith("error during command execution: "):
        if kept[-2] == "Error: " + kept[-1][len("error during command execution: ") :]:
            kept.pop()
    return "\n".join(kept[-lines:])[-limit:]


def timed_out(check, args, rc, err, timeout):
    detail = f"cosign gave up after {timeout} s (timeout): the registry did not answer in time"
    return VerificationFailed(check, TIMED_OUT, detail, args, rc, err)


def signature_failure(args, rc, err, timeout):
    if DEADLINE in err:
        return timed_out("signature", args, rc, err, timeout)
    if "no signatures found" in err:
        return VerificationFailed("signature", NO_SIGNATURE, "the digest carries no cosign signature", args, rc, err)
    if "no matching signatures" in err:
        detail = "the digest is signed, but no signature verifies with public_key"
        return VerificationFailed("signature", WRONG_KEY, detail, args, rc, err)
    return VerificationFailed("signature", COSIGN_ERROR, f"cosign verify failed (rc={rc})", args, rc, err)


def attestation_failure(args, rc, err, sbom_type, timeout):
    if DEADLINE in err:
        return timed_out("sbom", args, rc, err, timeout)
    if "accepted signatures do not match threshold" in err:
        detail = f"a {sbom_type} attestation exists, but it does not verify with public_key"
        return VerificationFailed("sbom", WRONG_KEY, detail, args, rc, err)
    if "no matching attestations" in err or "none of the attestations matched the predicate type" in err:
        return VerificationFailed("sbom", NO_SBOM, f"no {sbom_type} SBOM attestation", args, rc, err)
    return VerificationFailed("sbom", COSIGN_ERROR, f"cosign verify-attestation failed (rc={rc})", args, rc, err)


def hex_digest(digest):
    algorithm, _sep, value = digest.partition(":")
    if algorithm != "sha256" or not value:
        raise ValueError(f"only sha256 digests are verified, not {digest!r}")
    return value


def parse_signatures(stdout, digest):
    """cosign verify's JSON: the verified signatures' claims, each naming digest; ValueError otherwise."""
    claims = json.loads(stdout)
    if not isinstance(claims, list) or not claims:
        raise ValueError("expected a non-empty JSON list of signature claims")
    for claim in claims:
        signed = ((claim or {}).get("critical") or {}).get("image", {}).get("docker-manifest-digest")
        if signed != digest:
            raise ValueError(f"a verified signature names {signed!r}, not {digest}")
    return claims


def parse_attestations(stdout, digest, predicate_type):
    """cosign verify-attestation's output, one DSSE envelope per line: for each in-toto statement
    about digest with predicate_type, the sha256 of its predicate in canonical JSON (keys sorted,
    no spaces, UTF-8: what `jq -cS .predicate` prints). ValueError on anything else."""
    found = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        envelope = json.loads(line)
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
        subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject") or []]
        if hex_digest(digest) not in subjects:
            raise ValueError(f"an attestation is about {subjects}, not {digest}")
        if statement.get("predicateType") != predicate_type:
            continue
        canonical = json.dumps(statement["predicate"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        found.append(hashlib.sha256(canonical.encode()).hexdigest())
    if not found:
        raise ValueError(f"no verified attestation with predicate type {predicate_type}")
    return found


class CosignBackend:
    """Runs cosign through the collection's CommandRunner with a key file on the target.

    Every run is bounded by cosign's own --timeout (seconds): a registry that accepts a connection
    and never answers must not stall a release."""

    def __init__(self, runner, cli, key_file, timeout=120, insecure_registry=False):
        self.runner = runner
        self.cli = cli
        self.key_file = key_file
        self.timeout = timeout
        self.flags = [*OFFLINE, f"--timeout={timeout}s", *(INSECURE_REGISTRY if insecure_registry else ())]

    def _run(self, args):
        return args, *self.runner.run(args, "cosign", check=False)

    def _parsed(self, what, args, rc, out, err, parse):
        try:
            return parse(out)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CommandError(f"{what}: cannot read cosign's output ({exc})", args, rc, out, err) from exc

    def verify_signature(self, pinned, digest):
        """The claims of pinned's signatures made with the key; VerificationFailed otherwise."""
        args, rc, out, err = self._run([self.cli, "verify", "--key", self.key_file, *self.flags, pinned])
        if rc != 0:
            raise signature_failure(args, rc, err, self.timeout)
        return self._parsed(
            f"verifying the signature of {pinned}", args, rc, out, err, lambda o: parse_signatures(o, digest)
        )

    def verify_sbom(self, pinned, digest, types):
        """The first of types with an SBOM attestation made with the key: {type, predicate_type, sha256}."""
        failures = []
        for sbom_type in types:
            predicate_type = SBOM_PREDICATE_TYPES[sbom_type]
            args, rc, out, err = self._run(
                [self.cli, "verify-attestation", "--key", self.key_file, "--type", sbom_type, *self.flags, pinned]
            )
            if rc != 0:
                failure = attestation_failure(args, rc, err, sbom_type, self.timeout)
                if failure.reason == TIMED_OUT:
                    raise failure  # the next type would wait as long again
                failures.append(failure)
                continue
            found = self._parsed(
                f"verifying the {sbom_type} attestation of {pinned}",
                args,
                rc,
                out,
                err,
                lambda o, p=predicate_type: parse_attestations(o, digest, p),
            )
            return {"type": sbom_type, "predicate_type": predicate_type, "sha256": found[0]}
        # The most telling failure: a cosign error beats another key, which beats no SBOM at all.
        order = (COSIGN_ERROR, WRONG_KEY, NO_SBOM)
        worst = min(failures, key=lambda f: order.index(f.reason))
        if worst.reason == NO_SBOM:
            worst.detail = f"no SBOM attestation of type {' or '.join(types)}"
        raise worst
