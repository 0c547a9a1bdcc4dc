"""Access to the testbed that `make testbed` brought up: its summary, its registry, its images.

Tests that need the testbed call `Testbed.load()`, which fails (never skips) when a component is
missing: in CI a missing component is a broken run, not a reason to test less.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

TESTBED_DIR = Path(os.environ.get("TESTBED_DIR", "/var/lib/switchyard-testbed"))
REPO_ROOT = Path(__file__).resolve().parents[2]
TESTBED_SCRIPT = REPO_ROOT / "tests" / "testbed" / "testbed.sh"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


class TestbedDown(AssertionError):
    """A testbed component does not answer; the message says which and how to fix it."""


@dataclass(frozen=True)
class Testbed:
    __test__ = False  # not a test class, despite its name

    summary: dict

    @property
    def registry(self) -> str:
        return self.summary["registry"]

    @property
    def images(self) -> dict[str, str]:
        """Tag reference -> digest-pinned reference, as pushed by the testbed."""
        return self.summary["images"]

    def image(self, name: str) -> str:
        """The tag reference of a testbed image, e.g. image("demo-app:v1")."""
        return f"{self.registry}/switchyard/{name}"

    def pinned(self, name: str) -> str:
        """The digest-pinned reference of a testbed image, e.g. pinned("demo-app:v1")."""
        return self.images[self.image(name)]

    @property
    def cosign_public_key(self) -> Path:
        """The public half of the key that signs and attests demo-app v1, v2, v3 and v2-nosbom."""
        return Path(self.summary["cosign"]["public_key"])

    @property
    def cosign_other_public_key(self) -> Path:
        """The public half of another key: it signs and attests demo-app:v2-otherkey only."""
        return Path(self.summary["cosign"]["other_public_key"])

    @property
    def prometheus_url(self) -> str:
        """The testbed's Prometheus (Debian's package, scraping every second what tests list in targets_dir)."""
        return self.summary["prometheus"]["url"]

    @property
    def prometheus_auth(self) -> tuple[str, str]:
        """The user and password its HTTP API requires (basic authentication; fixed test values)."""
        return self.summary["prometheus"]["username"], self.summary["prometheus"]["password"]

    @property
    def prometheus_targets(self) -> Path:
        """The directory of file_sd target lists (<name>.json) the testbed's Prometheus scrapes."""
        return Path(self.summary["prometheus"]["targets_dir"])

    def registry_digest(self, reference: str) -> str | None:
        """The digest the registry serves for `host/repo:tag`, None when it has no such tag."""
        host, _sep, rest = reference.partition("/")
        repo, _sep, tag = rest.rpartition(":")
        resp = requests.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}, timeout=5)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.headers["Docker-Content-Digest"]

    def fresh_repository(self, name: str) -> tuple[str, str]:
        """(tag, repo@digest) of a repository of the registry that this host has never pulled: the testbed image
        name (e.g. "demo-app:v2") pushed under a new repository, then its local references removed - the image is
        missing on the host (its layers stay), as a new version is before a release pulls it."""
        tag = f"{self.registry}/switchyard/pull-{os.urandom(6).hex()}:{name.rpartition(':')[2]}"
        for args in (["tag", self.pinned(name), tag], ["push", "--quiet", tag]):
            subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
        pinned = f"{tag.rpartition(':')[0]}@{self.registry_digest(tag)}"
        subprocess.run(["docker", "rmi", tag, pinned], capture_output=True, check=False)
        if subprocess.run(["docker", "image", "inspect", pinned], capture_output=True, check=False).returncode == 0:
            raise AssertionError(f"{pinned} is still on the host after docker rmi")
        return tag, pinned

    @classmethod
    def load(cls) -> Testbed:
        summary_file = TESTBED_DIR / "summary.json"
        if not summary_file.is_file():
            raise TestbedDown(f"{summary_file} is missing: run 'make testbed' first")
        summary = json.loads(summary_file.read_text())
        docker = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, check=False
        )
        if docker.returncode != 0:
            raise TestbedDown(f"Docker Engine does not answer ({docker.stderr.strip()}): run 'make testbed'")
        try:
            requests.get(f"http://{summary['registry']}/v2/", timeout=3).raise_for_status()
        except requests.RequestException as exc:
            raise TestbedDown(
                f"the registry {summary['registry']} does not answer ({exc}): run 'make testbed'"
            ) from exc
        return cls(summary)
