"""switchyard_version is a label: it is written into color.env (KEY=value lines) and the ledger, so
release_state refuses, at the plan and at begin, a version that could end its line or its value - before
the ledger is read or anything changes. (The playbook refusing it is in tests/integration/test_release_state.py.)"""

from __future__ import annotations

import re

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.params import check_version, validate_params

RULE = "a letter or digit, then up to 127 of A-Z a-z 0-9 . _ + -"


def params(action: str, **extra) -> dict:
    base = {
        "app": "shop",
        "action": action,
        "release_id": "r1",
        "lock_token": "token-of-r1",
        "take_lock": True,
        "lock_ttl": 3600,
        "kind": "release",
        "version": None,
        "plan": None,
        "weights": None,
        "images": None,
    }
    return {**base, **extra}


@pytest.mark.parametrize("version", ["v1", "2", "1.4.0", "2.0.0-rc.1+build.7", "2024.06.01_hotfix", "a" * 128])
def test_version_labels(version: str) -> None:
    assert check_version("version", version) == version
    validate_params(params("plan", release_id=None, plan={"kind": "release", "version": version}))
    validate_params(params("begin", version=version))


HOSTILE = [
    "v2\nDB_PASSWORD=attacker",
    "v2\rX=1",
    "v2=1",
    "v2 # comment",
    "$(id)",
    "${DB_PASSWORD}",
    "v2'",
    '"v2"',
    "-v2",
    ".v2",
    "v/2",
    "a" * 129,
    "v2\x00",
]


@pytest.mark.parametrize("version", HOSTILE)
def test_the_plan_refuses_a_version_that_is_not_a_label(version: str) -> None:
    with pytest.raises(LedgerError, match=re.escape(f"plan.version={version!r} is not a version label: use {RULE}")):
        validate_params(params("plan", release_id=None, plan={"kind": "release", "version": version}))


@pytest.mark.parametrize("version", HOSTILE[:3])
def test_begin_refuses_it_too(version: str) -> None:
    with pytest.raises(LedgerError, match=re.escape(f"version={version!r} is not a version label")):
        validate_params(params("begin", version=version))


def test_a_rollback_takes_the_version_the_ledger_has() -> None:
    """A rollback begins with the version of the color it goes back to, from the ledger: not re-judged."""
    validate_params(params("begin", kind="rollback", version="recorded before labels were checked"))
