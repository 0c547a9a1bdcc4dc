"""The preflight checks judged from measurements: each limit, passing and failing, named."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.host.checks import judge, version_tuple

GB = 1024**3
LIMITS = {"min_docker_version": "20.10", "min_compose_version": "2.0.0", "min_free_gb": 2, "max_clock_skew": 5}
HOST = {
    "docker_version": "26.1.5+dfsg1",
    "compose_version": "2.26.1-4",
    "docker_root": "/var/lib/docker",
    "free_bytes": 80 * GB,
    "total_bytes": 250 * GB,
    "clock_skew_s": 0.4,
}


def by_name(checks: list[dict]) -> dict:
    return {c["name"]: c for c in checks}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("26.1.5+dfsg1", (26, 1, 5)), ("2.26.1-4", (2, 26, 1)), ("v2.0.0", (2, 0, 0)), ("20.10", (20, 10)), ("", None)],
)
def test_versions_as_debian_and_docker_print_them(text, expected) -> None:
    assert version_tuple(text) == expected


def test_a_healthy_host_passes_every_check_in_order() -> None:
    checks = judge(HOST, LIMITS)
    assert [c["name"] for c in checks] == ["docker", "compose", "free_space", "clock"]
    assert {c["status"] for c in checks} == {"pass"}
    assert by_name(checks)["free_space"]["value"] == {"bytes": 80 * GB, "gb": 80.0, "percent": 32.0}


@pytest.mark.parametrize(
    ("change", "name", "words"),
    [
        ({"docker_version": "19.03.15"}, "docker", "20.10 or later needed"),
        ({"compose_version": "1.29.2"}, "compose", "2.0.0 or later needed"),
        ({"compose_version": "garbage"}, "compose", "cannot read a version"),
        ({"free_bytes": 1 * GB}, "free_space", "min_free_gb=2 needed"),
        ({"clock_skew_s": -7.5}, "clock", "7.5 s behind the controller's, max_clock_skew=5 allowed (check NTP)"),
        ({"clock_skew_s": 9}, "clock", "ahead of"),
    ],
)
def test_each_limit_fails_with_its_name_and_the_value(change, name, words) -> None:
    checks = by_name(judge({**HOST, **change}, LIMITS))
    assert checks[name]["status"] == "fail" and words in checks[name]["message"], checks[name]
    assert all(c["status"] == "pass" for n, c in checks.items() if n != name)


def test_without_the_controllers_time_the_clock_is_skipped_not_passed() -> None:
    assert by_name(judge({**HOST, "clock_skew_s": None}, LIMITS))["clock"]["status"] == "skip"
