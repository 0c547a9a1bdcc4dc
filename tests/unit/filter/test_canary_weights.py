"""The canary_weights filter: the numbers the plan prints are the weights the canary role sets."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.canary_weights import canary_weights


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (0, {"blue": 256, "green": 0}),
        (10, {"blue": 230, "green": 26}),
        (25, {"blue": 192, "green": 64}),
        (50, {"blue": 128, "green": 128}),
        (100, {"blue": 0, "green": 256}),
        ("10", {"blue": 230, "green": 26}),
    ],
)
def test_weights_add_up_to_256(percent, expected) -> None:
    weights = canary_weights(percent, "blue", "green")
    assert weights == expected and sum(weights.values()) == 256


def test_a_first_release_sends_everything_to_the_candidate() -> None:
    assert canary_weights(10, "", "blue") == {"blue": 256}


@pytest.mark.parametrize(
    ("percent", "live", "candidate"),
    [
        (101, "blue", "green"),
        (-1, "blue", "green"),
        ("ten", "blue", "green"),
        (10, "blue", "blue"),
        (10, "red", "green"),
        (10, "blue", ""),
    ],
)
def test_bad_input_is_refused_with_the_allowed_values(percent, live, candidate) -> None:
    with pytest.raises(AnsibleFilterError, match="canary_weights"):
        canary_weights(percent, live, candidate)
