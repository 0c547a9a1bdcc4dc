"""Image references, digest pinning and the generated override file."""

from __future__ import annotations

import json

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.files import write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.compose.image_reference import ImageReference
from ansible_collections.switchyard.release.plugins.module_utils.compose.pinning import (
    PinningError,
    desired_references,
    pin_references,
    render_override,
)

DIGEST = "sha256:" + "a" * 64


class FixedRegistry:
    """Answers every tag with one digest, and records what it was asked (a test double for the
    registry lookup in unit tests; integration tests ask the real registry)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def resolve(self, ref: ImageReference) -> str:
        self.asked.append(str(ref))
        return DIGEST


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest"),
    [
        ("nginx", "nginx", None, None),
        ("127.0.0.1:5000/switchyard/demo-app:v1", "127.0.0.1:5000/switchyard/demo-app", "v1", None),
        (f"127.0.0.1:5000/demo@{DIGEST}", "127.0.0.1:5000/demo", None, DIGEST),
        (f"registry.example.com/a/b:2.4.1@{DIGEST}", "registry.example.com/a/b", "2.4.1", DIGEST),
        ("localhost:5000/app", "localhost:5000/app", None, None),
    ],
)
def test_parse_references(text: str, name: str, tag: str | None, digest: str | None) -> None:
    ref = ImageReference.parse(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)
    assert str(ref) == text
    assert ref.pinned == (digest is not None)


@pytest.mark.parametrize("text", ["", "a b", "app@sha256:nothex", "app@latest", ":v1"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ImageReference.parse(text)


def test_tags_are_resolved_and_digests_kept() -> None:
    registry = FixedRegistry()
    pinned = pin_references(
        {"api": "127.0.0.1:5000/app:v2", "db": f"127.0.0.1:5000/pg:15@{DIGEST}"}, registry, True, True
    )
    assert pinned == {"api": f"127.0.0.1:5000/app@{DIGEST}", "db": f"127.0.0.1:5000/pg@{DIGEST}"}
    assert registry.asked == ["127.0.0.1:5000/app:v2"]


def test_a_tag_without_resolution_is_refused_naming_the_service() -> None:
    with pytest.raises(PinningError, match=r"service 'api' uses '127.0.0.1:5000/app:v2', which is not pinned"):
        pin_references({"api": "127.0.0.1:5000/app:v2"}, FixedRegistry(), False, True)
    assert pin_references({"api": "app:v2"}, FixedRegistry(), False, False) == {"api": "app:v2"}


def test_images_option_wins_over_the_files_and_build_only_services_are_refused() -> None:
    config = {"services": {"api": {"image": "app:v1"}, "db": {"image": "pg:15"}}}
    assert desired_references(config, {"api": "app:v2"}) == {"api": "app:v2", "db": "pg:15"}
    with pytest.raises(PinningError, match="service 'web' has no image"):
        desired_references({"services": {"web": {"build": {"context": "."}}}}, {})


def test_override_is_stable_json_with_labels(tmp_path) -> None:
    text = render_override({"b": "x@" + DIGEST, "a": "y@" + DIGEST}, {"io.switchyard.color": "green"})
    assert text == render_override({"a": "y@" + DIGEST, "b": "x@" + DIGEST}, {"io.switchyard.color": "green"})
    doc = json.loads(text)
    assert doc["services"]["a"] == {"image": "y@" + DIGEST, "labels": {"io.switchyard.color": "green"}}
    target = tmp_path / "override.yml"
    write_atomically(str(target), text)
    assert target.read_text() == text
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["override.yml"]
