"""The unlisted_services filter on real Compose files."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.unlisted_services import unlisted_services

DEMO = Path(__file__).resolve().parents[3] / "examples" / "app"


def test_the_demo_files_have_only_the_api_which_the_images_name() -> None:
    files = [str(DEMO / "compose.base.yaml"), str(DEMO / "compose.local.yaml")]
    assert unlisted_services(files, {"api": "r/api:v1"}) == []
    assert unlisted_services(files, {}) == ["api"]


def test_a_service_of_a_second_file_is_named(tmp_path: Path) -> None:
    extra = tmp_path / "compose.sidecar.yaml"
    extra.write_text(
        "services:\n  sidecar:\n    image: r/sidecar:1.4\n  api:\n    environment: !override {A: b}\n"
        "    ports: !reset []\n"
    )
    assert unlisted_services([str(DEMO / "compose.base.yaml"), str(extra)], {"api": "r/api:v1"}) == ["sidecar"]


def test_a_service_in_a_profile_never_starts_with_the_color_so_is_not_named(tmp_path: Path) -> None:
    # The demo's migrate job (profile "jobs"): the compose_job runner runs it on the verified api image.
    extra = tmp_path / "compose.jobs.yaml"
    extra.write_text("services:\n  migrate:\n    environment: {A: b}\n  debug:\n    profiles: [tools]\n")
    assert unlisted_services([str(DEMO / "compose.base.yaml"), str(extra)], {"api": "r/api:v1"}) == []


def test_unreadable_or_wrong_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="cannot read the Compose file"):
        unlisted_services([str(tmp_path / "missing.yaml")], {})
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n")
    with pytest.raises(AnsibleFilterError, match="is not a Compose file"):
        unlisted_services([str(bad)], {})
    with pytest.raises(AnsibleFilterError, match="images must be a mapping"):
        unlisted_services([], ["api"])
