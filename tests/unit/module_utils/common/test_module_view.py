"""ModuleView: one module running another module's manager on part of its options - validated and defaulted against
that module's own argument spec, everything else the running module's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.common.module import ModuleView
from ansible_collections.switchyard.release.plugins.module_utils.compose.options import compose_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.lb.traffic import traffic_argument_spec

LB = {"kind": "haproxy", "dir": "/srv/shop/lb"}


def test_the_parameters_get_the_other_modules_defaults_and_the_rest_is_the_running_module() -> None:
    running = SimpleNamespace(check_mode=True, warn=lambda message: message, tmpdir="/tmp/x")
    view = ModuleView(running, compose_argument_spec(), {"project": "shop-blue", "stop_first": True})
    assert view.params["state"] == "present" and view.params["wait_timeout"] == 120 and view.params["stop_first"]
    assert view.check_mode is True and view.tmpdir == "/tmp/x" and view.warn("w") == "w"
    page = ModuleView(running, traffic_argument_spec(), {"app": "shop", "lb": LB, "routes": ["api"]})
    assert page.params["lb"]["timeout"] == 5 and page.params["up_timeout"] == 30 and page.params["weights"] is None


def test_a_bad_value_is_refused_naming_the_option() -> None:
    with pytest.raises(InvalidParameters, match="state") as refused:
        ModuleView(SimpleNamespace(), compose_argument_spec(), {"project": "shop-blue", "state": "sideways"})
    assert "sideways" in refused.value.msg or "present" in refused.value.msg
    with pytest.raises(InvalidParameters, match="maintenance"):
        ModuleView(SimpleNamespace(), traffic_argument_spec(), {"app": "a", "lb": LB, "routes": [], "maintenance": {}})
