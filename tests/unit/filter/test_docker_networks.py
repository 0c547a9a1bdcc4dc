"""The docker_networks filter on what `docker network inspect` printed on the testbed (Docker 26.1.5): found
networks with their gateways, missing ones left out for the role to create, any other failure refused."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.docker_networks import docker_networks

# docker network inspect shop_public shop_edge shop_data --format '{{.Name}} {{.Internal}}{{range ...}}'
ALL_THERE = {
    "rc": 0,
    "stdout": "shop_public false 172.22.0.1\nshop_edge true 172.23.0.1\nshop_data true\n",
    "stderr": "",
}
EDGE_MISSING = {
    "rc": 1,
    "stdout": "shop_public false 172.28.0.1",
    "stderr": "Error response from daemon: network shop_edge not found",
}


def test_networks_their_flag_and_gateways() -> None:
    assert docker_networks(ALL_THERE) == {
        "shop_public": {"internal": False, "gateways": ["172.22.0.1"]},
        "shop_edge": {"internal": True, "gateways": ["172.23.0.1"]},
        "shop_data": {"internal": True, "gateways": []},
    }


def test_a_missing_network_is_left_out() -> None:
    assert docker_networks(EDGE_MISSING) == {"shop_public": {"internal": False, "gateways": ["172.28.0.1"]}}
    nothing = {
        "rc": 1,
        "stdout": "",
        "stderr": "Error: No such network: shop_public\nError: No such network: shop_edge",
    }
    assert docker_networks(nothing) == {}


@pytest.mark.parametrize(
    "result",
    [
        {"rc": 1, "stdout": "", "stderr": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."},
        {"rc": 125, "stdout": "", "stderr": ""},
        {"rc": 0, "stdout": "<no value>", "stderr": ""},
        "not a result",
    ],
)
def test_any_other_failure_is_refused(result) -> None:
    with pytest.raises(AnsibleFilterError, match="docker"):
        docker_networks(result)
