"""End to end: a release that resolves its images once, verifies their cosign signatures and SBOM
attestations offline against the testbed's registry, and checks the host before anything changes;
the digests verified are the ones deployed, recorded in the ledger, shown by status.yml and rolled
back to.

The tests share one application and run in order, as an operator's successive commands would.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import DEMO_DIR
from support.compose import docker
from support.modules import run_module
from support.release import ReleasedApp

pytestmark = pytest.mark.timeout(900)

MISSING_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def app(testbed, tmp_path_factory) -> Iterator[ReleasedApp]:
    released = ReleasedApp(tmp_path_factory.mktemp("verified"), kind="ver", reports=False)
    # The verification policy lives in the inventory: given as extra vars it is refused (docs/security.md).
    released.inventory_vars.update(
        switchyard_verify_signatures=True,
        switchyard_require_sbom=True,
        switchyard_cosign_public_key=str(testbed.cosign_public_key),
    )
    # Blue/green in one step: the verification is what is tested here, not the canary.
    released.extra.update(switchyard_canary_steps=[100])
    try:
        yield released
    finally:
        released.down()


def psql(app: ReleasedApp, sql: str) -> str:
    return docker("exec", f"{app.app}-data-db-1", "psql", "-U", "demo", "-d", "demo", "-tAc", sql).stdout.strip()


def snapshot(app: ReleasedApp) -> dict:
    """What a refused release must leave exactly as it was."""
    containers = docker(
        "ps", "-a", "--no-trunc", "--format", '{{.ID}} {{.State}} {{.Image}} {{.Label "com.docker.compose.project"}}'
    ).stdout.splitlines()
    return {
        "ledger": (app.state / "ledger.json").read_bytes(),
        "lock": app.lock(),
        "containers": sorted(line for line in containers if f" {app.app}-" in line),
        "lb_config": (app.state / "lb" / "etc" / "haproxy.cfg").read_bytes(),
        "schema": psql(
            app,
            "SELECT string_agg(table_name || '.' || column_name || ':' || is_nullable, ',' "
            "ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public'",
        ),
        "weights": app.weights(),
    }


def retag(pinned: str, tag: str) -> None:
    """Point a tag of the testbed's registry at the image of a digest."""
    docker("tag", pinned, tag)
    docker("push", "--quiet", tag)


def step(release: dict, name: str) -> dict:
    return next(s for s in release["steps"] if s["name"] == name)


def test_check_mode_verifies_the_images_on_a_host_never_released_to(app, testbed) -> None:
    result = app.play("release.yml", "--check", switchyard_version="v1")
    assert "First release of" in result.stdout
    assert testbed.pinned("demo-app:v1") in result.stdout  # the digest verified, not the tag
    assert not (app.state / "ledger.json").exists()
    assert not app.containers_all("blue") and not app.containers_all("lb") and not app.containers_all("data")

    unsigned = app.play(
        "release.yml",
        "--check",
        ok=False,
        switchyard_version="v2",
        switchyard_images={"api": testbed.image("demo-app:v2-unsigned")},
    )
    assert "demo-app:v2-unsigned" in unsigned.stdout and "api" in unsigned.stdout, unsigned.stdout[-3000:]
    assert not (app.state / "ledger.json").exists() and not app.containers_all("data")


def test_a_verified_first_release_records_the_digest_the_key_and_the_sbom(app, testbed) -> None:
    app.play("release.yml", switchyard_version="v1")
    assert app.answer()["version"] == "v1"
    pinned = testbed.pinned("demo-app:v1")
    release = app.last_release()
    assert release["images"] == {"api": pinned}
    assert app.ledger()["colors"]["blue"]["images"] == {"api": pinned}
    container_image = docker("inspect", "-f", "{{.Config.Image}}", f"{app.app}-blue-api-1").stdout.strip()
    assert container_image == pinned

    verified = step(release, "verify")
    api = verified["verified"]["api"]
    # The key's identity: the sha256 of its DER form, whatever the PEM file's line breaks.
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(testbed.cosign_public_key), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert api["digest"] == pinned.split("@")[1] and api["pinned"] == pinned
    assert api["signature"] == {"verified": True, "key_sha256": hashlib.sha256(der).hexdigest()}
    assert api["sbom"]["type"] in ("spdxjson", "cyclonedx") and len(api["sbom"]["sha256"]) == 64
    assert verified["signatures_required"] is True and verified["sbom_required"] is True
    assert {c["name"] for c in verified["preflight"]} >= {"docker", "compose", "free_space", "clock"}

    lb_config = (app.state / "lb" / "etc" / "haproxy.cfg").read_bytes()
    assert step(release, "deploy")["lb_config"]["sha256"] == hashlib.sha256(lb_config).hexdigest()
    assert [s for s in release["steps"] if s.get("migrations_applied")], "the migrations applied are recorded"

    status = app.play("status.yml", "-v").stdout  # the evidence is in the full status (-v)
    assert pinned in status and f"verified (key sha256:{api['signature']['key_sha256']})" in status
    assert f"sha256:{api['sbom']['sha256']}" in status


@pytest.mark.parametrize(
    ("image", "said"),
    [
        ("demo-app:v2-unsigned", "no signature"),
        ("demo-app:v2-otherkey", "wrong key"),
        ("demo-app:v2-nosbom", "no SBOM"),
        (f"demo-app@{MISSING_DIGEST}", "not in registry"),
    ],
    ids=["unsigned", "another-key", "no-sbom", "digest-not-in-registry"],
)
def test_an_image_that_does_not_verify_is_refused_before_anything_changes(app, testbed, image, said) -> None:
    before = snapshot(app)
    reference = testbed.image(image) if ":" in image.split("@")[0] else f"{testbed.registry}/switchyard/{image}"
    result = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_images={"api": reference})
    assert reference in result.stdout and said in result.stdout, result.stdout[-4000:]
    assert snapshot(app) == before
    assert app.answer()["version"] == "v1"


def test_a_launcher_cannot_turn_verification_off_with_an_extra_var(app, testbed) -> None:
    before = snapshot(app)
    unsigned = {"api": testbed.image("demo-app:v2-unsigned")}
    for policy in (
        {"switchyard_verify_signatures": False},
        {"switchyard_cosign_public_key": str(testbed.cosign_other_public_key)},
        {"switchyard_preflight_skip": ["clock"]},
        # Extra vars outrank set_fact: the digests verified, replaced after the verification.
        {"__switchyard_pinned": {"api": testbed.pinned("demo-app:v2-unsigned")}},
    ):
        result = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_images=unsigned, **policy)
        assert f"{next(iter(policy))} was given as an extra var" in result.stdout, result.stdout[-3000:]
    assert snapshot(app) == before


def test_a_service_whose_image_would_not_be_verified_is_refused_before_anything_changes(app, tmp_path) -> None:
    before = snapshot(app)
    sidecar = tmp_path / "compose.sidecar.yaml"
    sidecar.write_text("services:\n  sidecar:\n    image: 127.0.0.1:5000/switchyard/demo-app:v2-unsigned\n")
    files = [str(DEMO_DIR / "compose.base.yaml"), str(sidecar)]
    result = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_compose_files=files)
    assert "does not name the service(s) sidecar" in result.stdout, result.stdout[-4000:]
    assert snapshot(app) == before


def test_a_long_transaction_on_a_table_the_migrations_touch_refuses_the_release(app, testbed) -> None:
    """v1 runs on level 1: v2's pending 0002 alters items, so a transaction held on items is named."""
    before = snapshot(app)
    holder = subprocess.Popen(
        [
            "docker",
            "exec",
            f"{app.app}-data-db-1",
            "psql",
            "-U",
            "demo",
            "-d",
            "demo",
            "-c",
            "BEGIN; LOCK TABLE items IN ACCESS SHARE MODE; SELECT pg_sleep(20); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        refused = app.play(
            "release.yml",
            ok=False,
            switchyard_version="v2",
            switchyard_preflight_max_transaction_age=1,
        )
        assert "max_transaction_age=1" in refused.stdout and "holds a lock on items" in refused.stdout, refused.stdout[
            -4000:
        ]
    finally:
        holder.terminate()
        holder.wait(30)
        psql(
            app,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()",
        )
    assert snapshot(app) == before


def test_a_host_check_that_fails_refuses_and_one_turned_off_is_recorded_as_skipped(app, testbed) -> None:
    before = snapshot(app)
    refused = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_preflight_min_free_percent=100)
    assert "free_space" in refused.stdout and "min_free_percent=100 needed" in refused.stdout, refused.stdout[-4000:]
    assert snapshot(app) == before
    # The controller's time is taken when the task is sent: the host reads its clock a little later.
    refused = app.play("release.yml", ok=False, switchyard_version="v2", switchyard_preflight_max_clock_skew=0.000001)
    assert "max_clock_skew=1e-06 allowed" in refused.stdout, refused.stdout[-4000:]
    assert snapshot(app) == before

    # Released through a tag that moves while the release waits for approval at 50 %: the resumed run
    # verifies and keeps the digest the candidate runs, never what the tag says now.
    moving = f"{testbed.registry}/switchyard/demo-app:moving"
    retag(testbed.pinned("demo-app:v2"), moving)
    settings = {
        "switchyard_version": "v2",
        "switchyard_images": {"api": moving},
        "switchyard_preflight_min_free_percent": 100,
        "switchyard_canary_steps": [50, 100],
        "switchyard_gate_enabled": False,  # no traffic here: the gate is not what this tests
    }
    app.inventory_vars["switchyard_preflight_skip"] = ["free_space"]
    app.play("release.yml", switchyard_stop_after_step=50, **settings)
    assert app.weights() == {"blue": 128, "green": 128}
    retag(testbed.pinned("demo-app:v3"), moving)
    app.play("release.yml", **settings)
    del app.inventory_vars["switchyard_preflight_skip"]
    assert app.answer()["version"] == "v2" and app.answer()["color"] == "green"
    container_image = docker("inspect", "-f", "{{.Config.Image}}", f"{app.app}-green-api-1").stdout.strip()
    assert container_image == testbed.pinned("demo-app:v2")
    assert app.last_release()["images"] == {"api": testbed.pinned("demo-app:v2")}
    release = app.last_release()
    checks = {c["name"]: c["status"] for c in step(release, "verify")["preflight"]}
    assert checks["free_space"] == "skip" and checks["docker"] == "pass"
    status = app.play("status.yml", "-v").stdout
    assert re.search(r'"preflight_skipped": \[\s*"free_space"\s*\]', status), status[-3000:]


def redeploy_blue(app: ReleasedApp, pinned: str) -> None:
    """What a hand-made change on the host would do: blue's containers replaced by another image."""
    blue = app.state / "blue"
    result = run_module(
        "compose_project",
        {
            "project": f"{app.app}-blue",
            "files": [str(blue / "compose.base.yaml"), str(blue / "color.override.yaml")],
            "env_files": [str(blue / "color.env")],
            "images": {"api": pinned},
            "labels": {"io.switchyard.app": app.app, "io.switchyard.color": "blue"},
            "wait_timeout": 60,
        },
    )
    assert not result.get("failed"), result.get("msg")


def test_rollback_refuses_a_color_whose_containers_were_replaced_and_returns_to_the_recorded_digests(
    app, testbed
) -> None:
    recorded = app.ledger()["colors"]["blue"]["images"]
    # v2 on blue (v3 would not even get healthy before the contract): not what the ledger says blue runs.
    redeploy_blue(app, testbed.pinned("demo-app:v2"))
    refused = app.play("rollback.yml", ok=False)
    assert "does not run the images given" in refused.stdout and testbed.pinned("demo-app:v2") in refused.stdout
    assert app.answer()["version"] == "v2" and app.answer()["color"] == "green"  # traffic stayed on green
    assert app.lock() is None

    redeploy_blue(app, recorded["api"])
    app.play("rollback.yml")
    assert app.answer()["version"] == "v1" and app.answer()["color"] == "blue"
    container_image = docker("inspect", "-f", "{{.Config.Image}}", f"{app.app}-blue-api-1").stdout.strip()
    assert {"api": container_image} == recorded == {"api": testbed.pinned("demo-app:v1")}
