"""HAProxy names: every name a module sends to the Runtime API (commands joined with ';' on one line)
or writes into the configuration is one HAProxy itself accepts, refused naming its parameter otherwise;
the client refuses any command that could still carry a second one. (The attack on a real HAProxy is
in tests/integration/test_canary_gate.py and test_haproxy_weight.py.)"""

from __future__ import annotations

import re

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import validate_static as gate_validate
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.names import (
    check_command,
    check_name,
    check_prefix,
    is_name,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import RuntimeAPI
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.weights import (
    validate_static as weight_validate,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer

ATTACK = "be_api; set server be_api/api_green state maint"
ALLOWED = "1 to 128 of the characters A-Z a-z 0-9 _ . : -"


@pytest.mark.parametrize("name", ["be_api", "api_blue", "shop-lb", "v1.2:canary", "A" * 128, "0"])
def test_haproxy_names(name: str) -> None:
    assert is_name(name) and check_name("backend", name) == name


@pytest.mark.parametrize(
    "name",
    [
        ATTACK,
        "be_api\nset server be_api/api_green state maint",
        "be_api\n",  # a `$` anchor would have let the trailing newline through
        "be_api}",
        "be api",
        "be_api#",
        "",
        "A" * 129,
        "bé_api",
        None,
        5,
    ],
)
def test_anything_else_is_refused_naming_the_parameter_and_the_characters(name) -> None:
    assert not is_name(name)
    with pytest.raises(InvalidParameters, match=re.escape(f"backend={name!r} is not an HAProxy name: use {ALLOWED}")):
        check_name("backend", name)


@pytest.mark.parametrize("command", ["show stat be_api 4 -1", "set weight be_api/api_green 26", "show servers state"])
def test_commands_pass(command: str) -> None:
    assert check_command(command) == command


@pytest.mark.parametrize("command", [f"show stat {ATTACK} 4 -1", "show info\nshow env", "show info\r", "a\x00b"])
def test_the_client_refuses_a_command_that_would_carry_another(command: str) -> None:
    with pytest.raises(InvalidParameters, match="a command holds no ';', newline or other control character"):
        check_command(command)


def test_the_client_refuses_before_it_connects(tmp_path) -> None:
    """Nothing listens on the path: refused (not 'cannot connect') means nothing was even attempted."""
    api = RuntimeAPI(str(tmp_path / "admin.sock"))
    with pytest.raises(InvalidParameters, match="refusing to send"):
        api.stat(ATTACK)
    with pytest.raises(InvalidParameters, match="refusing to send"):
        api.execute(["set weight be_api/api_green 1", "set weight be_api/api_blue 1;show info"])


@pytest.mark.parametrize("prefix", ["", "@1 ", "@!1234 ", "@master "])
def test_master_cli_prefixes(prefix: str) -> None:
    assert check_prefix("verify_prefix", prefix) == prefix


@pytest.mark.parametrize("prefix", ["@1", "show info;", "@1 show info; @1 ", "@1\n", "@@1 "])
def test_other_prefixes_are_refused(prefix: str, tmp_path) -> None:
    with pytest.raises(InvalidParameters, match=re.escape(f"verify_prefix={prefix!r}: use a master CLI prefix")):
        check_prefix("verify_prefix", prefix)
    with pytest.raises(InvalidParameters, match="prefix="):
        RuntimeAPI(str(tmp_path / "master.sock"), prefix=prefix)


def weight_params(**overrides) -> dict:
    base = {
        "backend": "be_api",
        "weights": {"api_green": 26},
        "states": {"api_green": "ready"},
        "verify_prefix": "",
        "reload": "never",
        "reload_command": None,
        "persist": None,
        "drain_timeout": 0,
        "up_timeout": 30,
        "timeout": 5,
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backend": ATTACK}, f"backend={ATTACK!r} is not an HAProxy name: use {ALLOWED}"),
        ({"weights": {"api_green; show info": 1}}, "weights: 'api_green; show info' is not an HAProxy name"),
        ({"states": {"api_green\n": "maint"}}, "states: 'api_green\\n' is not an HAProxy name"),
        ({"verify_prefix": "@1 show info;"}, "verify_prefix='@1 show info;': use a master CLI prefix"),
    ],
)
def test_haproxy_weight_refuses_hostile_names_first(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidParameters, match=re.escape(message)):
        weight_validate(weight_params(**overrides))
    weight_validate(weight_params())


def gate_params(sources: dict, baseline: str = "api_blue", canary: str = "api_green") -> dict:
    return {"window": 1.0, "count": 1, "confidence": 0.95, "baseline": baseline, "canary": canary, "sources": sources}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (gate_params({"haproxy_stats": {"socket": "/s", "backend": ATTACK}}), "sources.haproxy_stats.backend="),
        (gate_params({"haproxy_log": {"container": "lb", "backend": "be_api\n"}}), "sources.haproxy_log.backend="),
        (
            gate_params({"lb": {"dir": "/x", "route": "api;show info", "routes": None}}, "blue", "green"),
            "sources.lb.route:",
        ),
        (
            gate_params({"lb": {"dir": "/x", "route": None, "routes": ["api", "w b"]}}, "blue", "green"),
            "sources.lb.routes:",
        ),
        (gate_params({"haproxy_stats": {"socket": "/s", "backend": "be_api"}}, canary="api_green;x"), "canary="),
    ],
)
def test_canary_gate_refuses_hostile_names_naming_the_parameter(params: dict, message: str) -> None:
    with pytest.raises(InvalidParameters, match=re.escape(message) + ".*" + re.escape(ALLOWED)):
        gate_validate(params)


def test_probe_only_gates_keep_free_labels() -> None:
    """Without an HAProxy source, baseline and canary are labels that are never sent to HAProxy."""
    gate_validate(gate_params({"http_probe": {"url": "http://127.0.0.1:9/"}}, "v1 (live)", "v2 (candidate)"))


def test_the_haproxy_lb_refuses_a_hostile_route() -> None:
    lb = load_balancer({"kind": "haproxy", "dir": "/nonexistent"}, runner=None)
    lb.check_routes(["api", "web"])
    with pytest.raises(InvalidParameters, match=re.escape(f"routes: {ATTACK!r} is not an HAProxy name: use {ALLOWED}")):
        lb.check_routes(["api", ATTACK])
