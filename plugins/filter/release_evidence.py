# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_evidence: per color of a ledger, what runs there and what was proven about it before it
was deployed - the digests, the key that signed them, the SBOM digests, the host checks, the LB
configuration and the migrations - so that status.yml answers "what runs where, verified how"."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _step(release, name):
    return next((s for s in release.get("steps") or [] if s.get("name") == name), {})


def _images(color, verify, known):
    """Per service: the image the color runs, and what was verified of that very digest."""
    verified = verify.get("verified") or {}
    images = {}
    for service, pinned in sorted((color.get("images") or {}).items()):
        record = verified.get(service) or {}
        signature = record.get("signature") or {}
        sbom = record.get("sbom") or {}
        if not known:
            said = {"signature": "unknown (the release left the ledger's history)", "sbom": "unknown"}
        elif (signature.get("verified") or sbom.get("sha256")) and record.get("pinned") != pinned:
            other = record.get("pinned") or "another image"
            said = {"signature": f"not verified (the release verified {other})", "sbom": "none"}
        else:
            verified_with = f"verified (key sha256:{signature.get('key_sha256')})"
            said = {
                "signature": verified_with if signature.get("verified") else "not verified",
                "sbom": f"{sbom.get('type')} sha256:{sbom.get('sha256')}" if sbom.get("sha256") else "none",
            }
        images[service] = {"image": pinned, **said}
    return images


def release_evidence(ledger):
    if not isinstance(ledger, dict):
        raise AnsibleFilterError(f"release_evidence: expected the ledger (a mapping), got {type(ledger).__name__}")
    releases = {r.get("id"): r for r in ledger.get("releases") or [] if isinstance(r, dict)}
    evidence = {}
    for name, color in sorted((ledger.get("colors") or {}).items()):
        if not isinstance(color, dict):
            continue
        release = releases.get(color.get("release_id"), {})
        verify = _step(release, "verify")
        preflight = verify.get("preflight") or []
        evidence[name] = {
            "version": color.get("version"),
            "state": color.get("state"),
            "release_id": color.get("release_id"),
            "images": _images(color, verify, known=bool(release)),
            "lb_config_sha256_at_deploy": (_step(release, "deploy").get("lb_config") or {}).get("sha256") or None,
            "preflight_skipped": [
                c.get("name") for c in preflight if isinstance(c, dict) and c.get("status") == "skip"
            ],
            "migrations_applied": sorted(
                {str(v) for s in release.get("steps") or [] for v in s.get("migrations_applied") or []}
            ),
        }
    return evidence


class FilterModule:
    def filters(self):
        return {"release_evidence": release_evidence}
