"""Parsers of the docker CLI's output, fed with output recorded from Docker 26.1.5 / Compose 2.26.1."""

from __future__ import annotations

import json

import pytest
from support.recorded import DOCKER

from ansible_collections.switchyard.release.plugins.module_utils.compose.parsers import (
    health_outputs,
    parse_config_hashes,
    parse_json_stream,
    summarize_container,
)

RECORDED = DOCKER


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_config_hashes_match_the_container_label() -> None:
    hashes = parse_config_hashes(recorded("config-hash.txt"))
    container = summarize_container(json.loads(recorded("inspect-healthy.json"))[0])
    assert hashes == {"api": container["config_hash"]}


def test_config_hash_output_with_an_unexpected_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="unexpected line"):
        parse_config_hashes("api abc extra\n")


def test_ps_json_is_one_object_per_line_in_2_26() -> None:
    rows = parse_json_stream(recorded("ps.ndjson"))
    assert [r["Service"] for r in rows] == ["api"]
    assert rows[0]["Health"] == "healthy"


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("[]", 0), ('[{"a": 1}, {"a": 2}]', 2), ('{"a": 1}\n{"a": 2}\n', 2), ('{"a": 1}', 1)],
)
def test_json_stream_accepts_arrays_and_lines(text: str, count: int) -> None:
    """Compose printed a JSON array before 2.21 and one object per line since."""
    assert len(parse_json_stream(text)) == count


def test_summary_of_a_healthy_compose_container() -> None:
    container = summarize_container(json.loads(recorded("inspect-healthy.json"))[0])
    assert container["service"] == "api"
    assert container["state"] == "running" and container["health"] == "healthy"
    assert container["number"] == 1 and container["oneoff"] is False
    assert all(isinstance(name, str) for name in container["networks"]), container["networks"]
    assert container["digest"].startswith("sha256:") and container["image"].endswith(container["digest"])
    assert container["image_id"].startswith("sha256:")
    assert not any(k.startswith(("com.docker.compose.", "org.opencontainers.")) for k in container["labels"])


def test_health_outputs_of_an_unhealthy_container() -> None:
    inspected = json.loads(recorded("inspect-unhealthy.json"))[0]
    container = summarize_container(inspected)
    assert container["health"] == "unhealthy" and container["service"] is None
    outputs = health_outputs(inspected, last=2)
    assert len(outputs) == 2
    assert all(o["exit_code"] != 0 for o in outputs)
    assert "503" in outputs[-1]["output"]


def test_rendered_config_gives_the_services_and_their_images() -> None:
    config = json.loads(recorded("config.json"))
    assert sorted(config["services"]) == ["api"]
    assert "@sha256:" in config["services"]["api"]["image"]
    assert config["networks"]["edge"] == {"name": "shop_edge", "ipam": {}, "external": True}
