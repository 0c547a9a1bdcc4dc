"""The testbed is up and gives what the other tests rely on: Docker with Compose v2, a registry
serving real digests, HAProxy in master-worker mode, PostgreSQL with a password from a secret."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from support.compose import docker, unique_name
from support.testbed import TESTBED_DIR, TESTBED_SCRIPT, Testbed


def test_docker_engine_and_compose_v2(testbed: Testbed) -> None:
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    compose = docker("compose", "version", "--short").stdout.strip()
    assert server == testbed.summary["docker"]
    assert compose.lstrip("v").startswith("2."), compose


@pytest.mark.parametrize("name", ["haproxy:2.6", "postgres:15", "demo-app:v1", "demo-app:v2", "demo-app:v3"])
def test_registry_serves_each_image_by_digest(testbed: Testbed, name: str) -> None:
    tag_ref = testbed.image(name)
    digest = testbed.registry_digest(tag_ref)
    assert digest and digest.startswith("sha256:")
    assert testbed.pinned(name) == f"{tag_ref.rsplit(':', 1)[0]}@{digest}"
    # The digest is the content address of the image: pulling by it gives the image the tag names.
    docker("pull", "--quiet", testbed.pinned(name))
    by_digest = docker("image", "inspect", "--format", "{{.Id}}", testbed.pinned(name)).stdout
    by_tag = docker("image", "inspect", "--format", "{{.Id}}", tag_ref).stdout
    assert by_digest == by_tag


def test_demo_versions_are_distinct_images(testbed: Testbed) -> None:
    digests = {testbed.pinned(f"demo-app:{v}") for v in ("v1", "v2", "v3")}
    assert len(digests) == 3


def test_haproxy_master_worker_reloads_on_sigusr2_and_sighup(testbed: Testbed) -> None:
    name = unique_name("haproxy")
    docker("run", "--detach", "--name", name, testbed.pinned("haproxy:2.6"))
    try:

        def workers() -> list[str]:
            out = docker("exec", name, "ps", "-o", "pid=", "--ppid", "1").stdout
            return out.split()

        def wait_new_worker(old: list[str]) -> list[str]:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                current = workers()
                if len(current) == 1 and current != old:
                    return current
                time.sleep(0.1)
            raise AssertionError(f"no new worker replaced {old}: {workers()}")

        first = wait_new_worker([])
        master_cmd = docker("exec", name, "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
        assert "-W" in master_cmd.split(), master_cmd
        docker("kill", "--signal", "USR2", name)
        second = wait_new_worker(first)
        docker("kill", "--signal", "HUP", name)
        wait_new_worker(second)
        assert docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
        # The configuration is where the official image keeps it, and it validates.
        docker("exec", name, "haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg")
    finally:
        docker("rm", "--force", name, check=False)


def test_postgres_takes_its_password_from_a_secret_file(testbed: Testbed, tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("correct horse\n")
    secret.chmod(0o600)
    name = unique_name("postgres")
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/var/run/postgresql",
        "--tmpfs",
        "/tmp",
        "-e",
        "POSTGRES_USER=shop",
        "-e",
        "POSTGRES_DB=shop",
        "-e",
        "POSTGRES_PASSWORD_FILE=/run/secrets/pw",
        "-v",
        f"{secret}:/run/secrets/pw:ro",
        testbed.pinned("postgres:15"),
    )
    try:
        deadline = time.monotonic() + 60
        while docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", name).stderr[-2000:]
            time.sleep(0.5)

        def query(password: str) -> subprocess.CompletedProcess:
            return docker(
                "exec",
                "-e",
                f"PGPASSWORD={password}",
                name,
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "shop",
                "-d",
                "shop",
                "-Atc",
                "select current_user",
                check=False,
            )

        assert query("correct horse").stdout.strip() == "shop"
        wrong = query("wrong")
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
        logs = docker("logs", name)
        assert "correct horse" not in logs.stdout + logs.stderr
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


# `testbed.sh up` removes what test runs left behind (sytest-* projects): it runs alone.
@pytest.mark.serial
def test_rerunning_the_testbed_changes_nothing(testbed: Testbed) -> None:
    before = json.dumps(testbed.summary, sort_keys=True)
    # Other tests' containers may be up: leave them (CI's `make testbed` clears leftovers).
    env = {**os.environ, "TESTBED_CLEAR_TEST_LEFTOVERS": "0"}
    result = subprocess.run(
        ["bash", str(TESTBED_SCRIPT), "up"], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    for action in ("installing", "starting", "building the base image", "importing", "pushing"):
        assert action not in result.stderr, result.stderr
    after = json.dumps(Testbed.load().summary, sort_keys=True)
    assert after == before


def test_registry_rejects_unknown_tags(testbed: Testbed) -> None:
    assert testbed.registry_digest(f"{testbed.registry}/switchyard/demo-app:no-such-tag") is None
    resp = requests.get(f"http://{testbed.registry}/v2/_catalog", timeout=5)
    assert "switchyard/demo-app" in resp.json()["repositories"]


def test_the_signing_variants_are_images_of_their_own_and_the_keys_are_kept_private(testbed: Testbed) -> None:
    variants = ("v2-unsigned", "v2-otherkey", "v2-nosbom")
    digests = {testbed.pinned(f"demo-app:{v}") for v in ("v2", *variants)}
    assert len(digests) == 4, "signatures attach to digests: each variant needs its own"
    for variant in variants:
        label = docker(
            "image",
            "inspect",
            "--format",
            '{{index .Config.Labels "org.switchyard.testbed.variant"}}',
            testbed.pinned(f"demo-app:{variant}"),
        ).stdout.strip()
        assert label == variant
    cosign = testbed.summary["cosign"]
    for public in (testbed.cosign_public_key, testbed.cosign_other_public_key):
        assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
        assert public.with_suffix(".key").stat().st_mode & 0o077 == 0
    signed = cosign["signed"]
    assert signed[testbed.image("demo-app:v2-unsigned")] == {"public_key": None, "sbom": []}
    assert signed[testbed.image("demo-app:v2-otherkey")]["public_key"] == str(testbed.cosign_other_public_key)


def test_prometheus_is_debian_12s_run_by_the_testbed_behind_credentials(testbed: Testbed) -> None:
    """The testbed's own process (its pid file, its config; not the package's service) answers only with the
    test credentials, and scrapes the targets listed in targets_dir."""
    url = testbed.prometheus_url
    assert requests.get(f"{url}/api/v1/status/buildinfo", timeout=5).status_code == 401
    info = requests.get(f"{url}/api/v1/status/buildinfo", auth=testbed.prometheus_auth, timeout=5).json()
    assert info["data"]["version"].startswith("2.42."), info
    pid = (TESTBED_DIR / "prometheus.pid").read_text().strip()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert f"--config.file={TESTBED_DIR}/prometheus/prometheus.yml".encode() in cmdline, cmdline
    config = requests.get(f"{url}/api/v1/status/config", auth=testbed.prometheus_auth, timeout=5).json()
    assert (
        f"{testbed.prometheus_targets}/*.json" in config["data"]["yaml"]
        and "scrape_interval: 1s" in config["data"]["yaml"]
    )
