"""The release_evidence filter on a ledger shaped as the release role writes it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.release_evidence import release_evidence

PINNED = "127.0.0.1:5000/switchyard/demo-app@sha256:" + "a" * 64
LEDGER = {
    "live": "green",
    "colors": {
        "green": {"version": "v2", "state": "live", "release_id": "r2", "images": {"api": PINNED}},
        "blue": {"version": "v1", "state": "standby", "release_id": "r1", "images": {"api": PINNED}},
    },
    "releases": [
        {"id": "r1", "steps": [{"name": "expand", "migrations_applied": ["1"]}]},
        {
            "id": "r3",
            "steps": [
                {
                    "name": "verify",
                    "verified": {
                        "api": {
                            "pinned": "other@sha256:" + "b" * 64,
                            "signature": {"verified": True, "key_sha256": "k"},
                        }
                    },
                }
            ],
        },
        {
            "id": "r2",
            "steps": [
                {
                    "name": "verify",
                    "preflight": [{"name": "clock", "status": "skip"}, {"name": "memory", "status": "pass"}],
                    "verified": {
                        "api": {
                            "digest": "sha256:" + "a" * 64,
                            "pinned": PINNED,
                            "signature": {"verified": True, "key_sha256": "k" * 64},
                            "sbom": {"type": "spdxjson", "sha256": "s" * 64},
                        }
                    },
                },
                {"name": "expand", "migrations_applied": ["2"]},
                {"name": "deploy", "deployed": True, "lb_config": {"path": "/x/haproxy.cfg", "sha256": "c" * 64}},
            ],
        },
    ],
}


def test_each_color_shows_its_digests_key_sbom_lb_config_skipped_checks_and_migrations() -> None:
    evidence = release_evidence(LEDGER)
    green = evidence["green"]
    assert green["images"]["api"] == {
        "image": PINNED,
        "signature": f"verified (key sha256:{'k' * 64})",
        "sbom": f"spdxjson sha256:{'s' * 64}",
    }
    assert green["lb_config_sha256_at_deploy"] == "c" * 64
    assert green["preflight_skipped"] == ["clock"] and green["migrations_applied"] == ["2"]
    # A release made before verification existed (no verify step): said plainly, nothing invented.
    blue = evidence["blue"]
    assert blue["images"]["api"]["signature"] == "not verified" and blue["images"]["api"]["sbom"] == "none"
    assert blue["lb_config_sha256_at_deploy"] is None and blue["migrations_applied"] == ["1"]


def test_a_digest_other_than_the_verified_one_or_a_release_out_of_history_is_not_called_verified() -> None:
    ledger = {
        **LEDGER,
        "colors": {
            "blue": {"version": "v3", "release_id": "r3", "images": {"api": PINNED}},
            "green": {"version": "v0", "release_id": "r0-trimmed", "images": {"api": PINNED}},
        },
    }
    evidence = release_evidence(ledger)
    said = evidence["blue"]["images"]["api"]["signature"]
    assert said == f"not verified (the release verified other@sha256:{'b' * 64})"
    assert evidence["green"]["images"]["api"]["signature"].startswith("unknown")


def test_an_empty_ledger_has_no_colors_and_a_wrong_input_is_refused() -> None:
    assert release_evidence({}) == {}
    with pytest.raises(AnsibleFilterError, match="expected the ledger"):
        release_evidence([])
