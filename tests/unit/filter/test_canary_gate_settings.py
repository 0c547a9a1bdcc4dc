"""The canary_gate_settings filter: the gate is off only when asked explicitly, and a window that is not a
positive number is refused while it is on (values as AWX surveys and -e pass them)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.canary_gate_settings import canary_gate_settings


@pytest.mark.parametrize(
    ("window", "enabled", "expected"),
    [
        (60, True, {"enabled": True, "window": 60.0}),
        ("60", "true", {"enabled": True, "window": 60.0}),
        (" 30.5 ", "yes", {"enabled": True, "window": 30.5}),
        (".5", "", {"enabled": True, "window": 0.5}),  # an empty survey answer does not turn the gate off
        ("", False, {"enabled": False, "window": 0.0}),
        (0, "false", {"enabled": False, "window": 0.0}),
        ("anything", "OFF", {"enabled": False, "window": 0.0}),
        ("3", "0", {"enabled": False, "window": 0.0}),
    ],
)
def test_settings(window, enabled, expected) -> None:
    assert canary_gate_settings(window, enabled) == expected


@pytest.mark.parametrize("window", ["", 0, "0", "-1", -5, "abc", "inf", "nan", "1e3", True, None, "0.0"])
def test_a_window_that_is_not_a_positive_number_is_refused_while_the_gate_is_on(window) -> None:
    with pytest.raises(AnsibleFilterError, match="switchyard_canary_window must be a positive number") as refused:
        canary_gate_settings(window, True)
    assert "set switchyard_gate_enabled=false" in str(refused.value)
