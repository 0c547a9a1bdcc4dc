"""The trusted_sources filter: only CIDRs reach the `acl ... src` line of haproxy.cfg; anything else is refused
naming switchyard_canary_trusted_sources and the entry, before anything is rendered."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.trusted_sources import trusted_sources


def test_cidrs_and_the_docker_host_in_order_without_duplicates() -> None:
    sources = ["127.0.0.0/8", "::1/128", "10.1.2.3", "10.0.0.0/8", "192.168.0.0/255.255.0.0", "127.0.0.0/8"]
    assert trusted_sources(sources, ["172.22.0.1", ""]) == [
        "127.0.0.0/8",
        "::1/128",
        "10.1.2.3/32",
        "10.0.0.0/8",
        "192.168.0.0/16",
        "172.22.0.1/32",
    ]
    assert trusted_sources([]) == []


@pytest.mark.parametrize(
    ("sources", "named"),
    [
        (["127.0.0.0/8", "10.0.0.300/8"], "switchyard_canary_trusted_sources[1]='10.0.0.300/8'"),
        (["10.0.0.0/8 always_true"], "switchyard_canary_trusted_sources[0]='10.0.0.0/8 always_true'"),
        (["10.0.0.0/8\n    use-server api_green"], "switchyard_canary_trusted_sources[0]="),
        (["docker-host"], "switchyard_canary_trusted_sources[0]='docker-host'"),
        ([167772160], "switchyard_canary_trusted_sources[0]=167772160"),
        ([""], "switchyard_canary_trusted_sources[0]=''"),
    ],
)
def test_anything_but_a_cidr_is_refused_naming_the_entry(sources, named) -> None:
    with pytest.raises(AnsibleFilterError, match="is not a CIDR: use an IPv4 or IPv6 address") as refused:
        trusted_sources(sources)
    assert named in str(refused.value)


def test_a_string_is_not_a_list() -> None:
    """A single CIDR given as a string would otherwise be read character by character."""
    with pytest.raises(AnsibleFilterError, match="switchyard_canary_trusted_sources must be a list of CIDRs"):
        trusted_sources("10.0.0.0/8")


def test_a_gateway_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="gateway address of the LB's public network"):
        trusted_sources([], ["<no value>"])


def test_the_docker_host_to_be_trusted_must_have_an_address() -> None:
    with pytest.raises(AnsibleFilterError, match="switchyard_canary_trust_docker_host is true, but"):
        trusted_sources(["127.0.0.0/8"], [], True)
    assert trusted_sources(["127.0.0.0/8"], ["172.22.0.1"], True) == ["127.0.0.0/8", "172.22.0.1/32"]


@pytest.mark.parametrize("value", ["172.22.0.1/16", "10.0.0.9/8"])
def test_host_bits_after_the_prefix_are_a_typo_not_a_network(value: str) -> None:
    """172.22.0.1/16 is not silently widened to the whole 172.22.0.0/16."""
    with pytest.raises(AnsibleFilterError, match="no host bits after the prefix"):
        trusted_sources([value])


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "::/1", "::ffff:0:0/96"])
def test_every_client_is_never_trusted(value: str) -> None:
    with pytest.raises(AnsibleFilterError, match=r"switchyard_canary_trusted_sources\[0\]=.* trusts too many clients"):
        trusted_sources([value])
