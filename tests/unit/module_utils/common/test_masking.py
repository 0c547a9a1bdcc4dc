"""What a module shows of its secrets: URLs without credentials, no_log options hidden whatever their length,
a mask list without values too short to mask, and probe headers masked by name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.canary.masking import protect
from ansible_collections.switchyard.release.plugins.module_utils.common.masking import (
    HIDDEN,
    forget_short_masks,
    hidden_params,
    is_secret_header,
    mask_url,
    scrub_url,
    url_credentials,
)
from ansible_collections.switchyard.release.plugins.modules.canary_gate import ARGUMENT_SPEC as GATE_SPEC
from ansible_collections.switchyard.release.plugins.modules.compose_project import ARGUMENT_SPEC as COMPOSE_SPEC


@pytest.mark.parametrize(
    ("url", "masked", "secrets"),
    [
        ("https://user:s3cret@prom:9090/x?q=1", "https://user:****@prom:9090/x?q=1", ["s3cret"]),
        ("https://TOKEN123@prom/", "https://****@prom/", ["TOKEN123"]),
        ("https://user:p%40ss@prom", "https://user:****@prom", ["p%40ss", "p@ss"]),
        ("https://user:p@ss@prom/a@b", "https://user:****@prom/a@b", ["p@ss"]),  # an unencoded @, as urlsplit reads it
        ("http://127.0.0.1:9090", "http://127.0.0.1:9090", []),
        ("https://user:@prom", "https://user:****@prom", []),
    ],
)
def test_a_url_is_shown_without_its_credentials(url: str, masked: str, secrets: list[str]) -> None:
    assert mask_url(url) == masked
    assert url_credentials(url) == secrets


def test_an_error_message_loses_the_credentials_of_every_url_in_it() -> None:
    url = "https://user:longsecret@prom"
    message = f"cannot reach {url}/api/v1/query (longsecret rejected); see //other:pw@host"
    expected = "cannot reach https://user:****@prom/api/v1/query (**** rejected); see //other:****@host"
    assert scrub_url(message, url) == expected


def test_header_names_that_carry_credentials() -> None:
    """Any name containing a credential word, in any case (docs/canary_gate.md lists the words)."""
    for name in (
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "X-Session-Id",
        "Ocp-Apim-Subscription-Key",
        "X-Functions-Key",
        "x-amz-security-token",
        "X-Hub-Signature-256",
        "X-Client-Secret",
        "X-Password",
        "X-Passwd",
        "X-Credential",
    ):
        assert is_secret_header(name), name
    for name in ("X-Canary", "Accept", "Host", "User-Agent", "Content-Type"):
        assert not is_secret_header(name), name


def test_the_gate_masks_a_subscription_key_header() -> None:
    """A key header not named like X-Api-Key (Azure's Ocp-Apim-Subscription-Key) stays on the mask list."""
    headers = {"Ocp-Apim-Subscription-Key": "sub-key-0123456789", "X-Functions-Key": "fn-key-9876543210"}
    sources = {"http_probe": {"url": "http://lb/", "headers": {**headers, "X-Canary": "green"}}}
    params = {"baseline": "blue", "canary": "green", "sources": sources}
    mod = module(GATE_SPEC, params, {*headers.values(), "green", "http://lb/"})
    protect(mod, sources)
    assert mod.no_log_values == set(headers.values())


def test_no_log_options_are_hidden_in_the_invocation_whatever_their_length() -> None:
    params = {"project": "shop-blue", "run": {"service": "api", "command": "x", "environment": {"A": "x", "B": "long"}}}
    shown = hidden_params(COMPOSE_SPEC, params)
    assert shown["run"] == {"service": "api", "command": "x", "environment": {"A": HIDDEN, "B": HIDDEN}}
    assert params["run"]["environment"] == {"A": "x", "B": "long"}  # the module's own params are untouched


def module(spec: dict, params: dict, masks: set[str]) -> SimpleNamespace:
    warnings: list[str] = []
    return SimpleNamespace(argument_spec=spec, params=params, no_log_values=set(masks), warn=warnings.append)


def test_short_values_leave_the_mask_list() -> None:
    mod = module({}, {}, {"x", "abc", "abcd", "a-long-secret"})
    forget_short_masks(mod)
    assert mod.no_log_values == {"abcd", "a-long-secret"}


def test_the_gate_masks_credential_headers_and_url_passwords_but_not_x_canary() -> None:
    sources = {
        "prometheus": {"url": "https://prom:hunter2hunter2@prom:9090", "queries": []},
        "http_probe": {"url": "http://lb/", "headers": {"Authorization": "Bearer tok-123456", "X-Canary": "green"}},
    }
    params = {"baseline": "blue", "canary": "green", "sources": sources}
    # What AnsibleModule puts on the mask list for the no_log headers option.
    mod = module(GATE_SPEC, params, {"Bearer tok-123456", "green"})
    shown = protect(mod, sources)["module_args"]
    assert mod.no_log_values == {"Bearer tok-123456", "hunter2hunter2"}
    assert shown["sources"]["prometheus"]["url"] == "https://prom:****@prom:9090"
    assert shown["sources"]["http_probe"]["headers"] == {"Authorization": HIDDEN, "X-Canary": HIDDEN}
    assert shown["canary"] == "green" and params["sources"]["prometheus"]["url"].endswith("hunter2hunter2@prom:9090")
