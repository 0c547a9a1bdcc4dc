"""The recreate module's manager: the order of its parts and what a failure at each point leaves - `touched` (the old
version stopped or its files replaced) and `page` - which the release role's rescue acts on. The parts (the project,
the page) are recorded fakes here; tests/integration/test_recreate_module.py runs the module against HAProxy and
Compose for real."""

from __future__ import annotations

import contextlib

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.release import recreate as recreate_utils
from ansible_collections.switchyard.release.plugins.module_utils.release.recreate import Recreate
from ansible_collections.switchyard.release.plugins.modules.recreate import ARGUMENT_SPEC


class FakeModule:
    def __init__(self, check_mode=False, **params):
        args = {
            "app": "shop",
            "lb": {"kind": "haproxy", "dir": "/srv/shop/lb"},
            "routes": ["api"],
            "project": "shop-blue",
            "files": ["/srv/shop/blue/compose.yaml"],
            "staged_dir": "/srv/shop/blue.staged",
            "color": "blue",
            "maintenance": {"probe_urls": ["http://127.0.0.1:8080/"]},
            **params,
        }
        self.params = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args).validated_parameters
        self.check_mode, self._diff, self.no_log_values, self.tmpdir = check_mode, False, set(), "/tmp"
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


class Parts:
    """The calls made, in order, and where to fail (a step name)."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def step(self, name):
        self.calls.append(name)
        if name == self.fail_at:
            raise SwitchyardError(f"{name} failed")


def fakes(monkeypatch, parts: Parts):
    class Lease:
        @contextlib.contextmanager
        def kept(self):
            yield self

    class Compose:
        def __init__(self, module):
            self.params, self.lease = module.params, Lease()
            self.result = {"changed": False, "touched": False, "invocation": {}}
            self.cli = type("CLI", (), {"containers": staticmethod(lambda: [{"service": "api"}])})()

        def require_sdk(self):
            pass

        def prepare_present(self, before):
            parts.step("prepare")
            return {"before": before}

        def apply_present(self, prepared):
            parts.step("check staged")  # before the stop: untouched if it fails
            self.result["touched"] = True
            parts.step("stop")
            self.result.update(stopped_s=0.2, changed=True)
            parts.step("up")
            self.result.update(ready_s=1.5, images={"api": "demo@sha256:1"}, diff={"before": "v1", "after": "v2"})

    class Page:
        def __init__(self, module):
            self.params = module.params
            self.enabled = module.params["maintenance"]["enabled"]
            self.result = {"changed": False}

        def check_params(self):
            if not self.params["routes"]:
                raise InvalidParameters("routes: give at least one route")

        def run(self):
            name = "page on" if self.enabled else "page off"
            self.result["maintenance"] = {"enabled": self.enabled, "changed": True}  # set, then checked
            self.result["changed"] = True
            parts.step(name)
            self.result["maintenance"]["verified_at"] = 100.0 if self.enabled else 103.0
            if not self.enabled:
                assert self.params["maintenance"]["since"] == 100.0 and self.params["maintenance"]["wait_up"] == "blue"
                self.result["maintenance"]["outage_ms"] = 3000.0
            return self.result

    monkeypatch.setattr(recreate_utils, "ComposeProjectManager", Compose)
    monkeypatch.setattr(recreate_utils, "Traffic", Page)


@pytest.fixture
def files(tmp_path) -> dict:
    """The color's Compose file (its existence is checked before anything else)."""
    compose = tmp_path / "blue" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text("services: {api: {image: demo}}\n")
    return {"files": [str(compose)], "staged_dir": str(tmp_path / "blue.staged")}


def run(monkeypatch, files, fail_at=None, **params):
    parts = Parts(fail_at)
    fakes(monkeypatch, parts)
    manager = Recreate(FakeModule(**files, **params))
    try:
        result, error = manager.run(), None
    except SwitchyardError as exc:
        result, error = manager.partial_result(), exc
    return parts.calls, result, error


def test_a_recreate_runs_its_parts_in_order_and_resumes(monkeypatch, files) -> None:
    calls, result, error = run(monkeypatch, files)
    assert error is None and calls == ["prepare", "page on", "check staged", "stop", "up", "page off"]
    assert (result["touched"], result["page"], result["changed"]) == (True, "resumed", True)
    assert result["outage_ms"] == 3000.0 and result["ready_s"] == 1.5 and result["stopped_s"] == 0.2
    assert "invocation" not in result["project"] and result["images"] == {"api": "demo@sha256:1"}


@pytest.mark.parametrize(
    ("fail_at", "touched", "page"),
    [
        ("prepare", False, "off"),  # the project cannot be rendered, an image is missing: nothing changed
        ("page on", False, "on"),  # the page may be on (some routes): the rescue turns it off over the old version
        ("check staged", False, "on"),  # a staged file gone, the lock lost: the old version still runs
        ("stop", True, "on"),  # from the stop on, the old version is touched: the page stays
        ("up", True, "on"),
        ("page off", True, "on"),  # the LB never saw the new version UP: the page stays (or goes back on)
    ],
)
def test_a_failure_says_whether_the_old_version_was_touched_and_where_the_page_is(
    monkeypatch, files, fail_at, touched, page
) -> None:
    calls, result, error = run(monkeypatch, files, fail_at=fail_at)
    assert error is not None and calls[-1] == fail_at
    assert (result["touched"], result["page"]) == (touched, page), result
    assert ("page_on" in result) == (fail_at != "prepare") and "outage_ms" not in result


def test_resume_false_leaves_the_page_on_for_the_caller(monkeypatch, files) -> None:
    calls, result, _error = run(monkeypatch, files, resume=False)
    assert calls[-1] == "up" and result["page"] == "on" and result["page_on"]["verified_at"] == 100.0
    assert "page_off" not in result and "outage_ms" not in result


def test_the_pages_options_are_refused_before_anything_is_read(monkeypatch, files) -> None:
    calls, result, error = run(monkeypatch, files, routes=[])
    assert isinstance(error, InvalidParameters) and calls == [] and result["page"] == "off"
