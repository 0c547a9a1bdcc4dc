"""compose_project's one-off jobs: what needs no Docker - the checks before anything runs, the job's own
Compose file (image and variables, never on a command line) and what counts as a timeout."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.compose.project import (
    job_timed_out,
    validate_static,
    write_job_override,
)


def params(tmp_path, **extra) -> dict:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    return {
        "project": "shop-green",
        "files": [str(compose)],
        "env_files": [],
        "state": "unchanged",
        "wait_timeout": 10,
        "images": {},
        "run": {"service": "migrate", "environment": {}, "public_environment": {}},
        **extra,
    }


def test_unchanged_needs_a_job_and_takes_its_image_from_run_image(tmp_path) -> None:
    validate_static(params(tmp_path))
    with pytest.raises(InvalidParameters, match="state=unchanged only runs the job of run"):
        validate_static(params(tmp_path, run=None))
    with pytest.raises(InvalidParameters, match="images is not used with state=unchanged.*run.image"):
        validate_static(params(tmp_path, images={"migrate": "x"}))


def test_pulled_runs_no_job_and_needs_images_or_files(tmp_path) -> None:
    """state=pulled (a recreate's pull before its outage) only pulls: a job is refused, and it needs something to
    pull - the images given, or the files' own."""
    with pytest.raises(InvalidParameters, match="state=pulled only pulls the project's images: run is not used"):
        validate_static(params(tmp_path, state="pulled"))
    validate_static(params(tmp_path, state="pulled", run=None))
    validate_static(params(tmp_path, state="pulled", run=None, files=[], images={"api": "x"}))
    with pytest.raises(InvalidParameters, match="state=pulled needs images, or files to read the services' images"):
        validate_static(params(tmp_path, state="pulled", run=None, files=[]))


def test_a_variable_is_public_or_secret_never_both_and_is_a_name(tmp_path) -> None:
    both = {"service": "m", "environment": {"A": "s3cret"}, "public_environment": {"A": "x"}}
    with pytest.raises(InvalidParameters, match="run.environment and run.public_environment both set A"):
        validate_static(params(tmp_path, run=both))
    bad = {"service": "m", "environment": {}, "public_environment": {"PHASE=x": "y"}}
    with pytest.raises(InvalidParameters, match="run.public_environment: 'PHASE=x' is not a variable name"):
        validate_static(params(tmp_path, run=bad))


def test_the_jobs_file_pins_its_image_and_carries_its_variables_0600(tmp_path) -> None:
    path = write_job_override(str(tmp_path), "migrate", {"PHASE": "expand", "PW": "a$b"}, "reg/app@sha256:" + "a" * 64)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(open(path, encoding="utf-8").read()) == {
        "services": {
            "migrate": {"image": "reg/app@sha256:" + "a" * 64, "environment": {"PHASE": "expand", "PW": "a$$b"}}
        }
    }


@pytest.mark.parametrize(
    ("timeout", "rc", "duration", "timed_out"),
    [
        (None, 124, 5.0, False),  # no timeout: a job's own 124 is its own
        (3, 124, 3.0, True),  # TERM sent
        (3, 137, 13.1, True),  # TERM ignored, KILL 10 s later
        (3, 137, 0.4, False),  # killed by something else (memory) before the timeout
        (3, 1, 0.2, False),
        (3, 0, 0.2, False),
    ],
)
def test_what_counts_as_a_timeout(timeout, rc, duration, timed_out) -> None:
    assert job_timed_out(timeout, rc, duration) is timed_out
