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


def _images(color, verify):
    verified = verify.get("verified") or {}
    images = {}
    for service, pinned in sorted((color.get("images") or {}).items()):
        record = verified.get(service) or {}
        signature = record.get("signature") or {}
        sbom = record.get("sbom") or {}
        images[service] = {
            "image": pinned,
            "signature": f"verified (key sha256:{signature['key_sha256']})"
            if signature.get("verified")
            else "not verified",
            "sbom": f"{sbom.get('type')} sha256:{sbom.get('sha256')}" if sbom.get("sha256") else "none",
        }
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
            "images": _images(color, verify),
            "lb_config_sha256": (_step(release, "deploy").get("lb_config") or {}).get("sha256") or None,
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
