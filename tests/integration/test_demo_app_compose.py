"""The three demo images run under Compose with --wait, side by side on shared external
networks, against one PostgreSQL in its own project, through the 0001 and 0002 migrations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from conftest import DEMO_DIR
from support.compose import ComposeProject, free_port, wait_http
from support.testbed import Testbed

MIGRATIONS = DEMO_DIR / "migrations"


class Color:
    """One color of the demo app, published on its own port by compose.local.yaml."""

    def __init__(self, testbed: Testbed, app: str, color: str, secrets_dir, projects: list[ComposeProject]):
        self.port = free_port()
        self.project = ComposeProject(
            name=f"{app}-{color}",
            files=[DEMO_DIR / "compose.base.yaml", DEMO_DIR / "compose.local.yaml"],
            env={
                "SWITCHYARD_APP": app,
                "SWITCHYARD_COLOR": color,
                "DEMO_SECRETS_DIR": str(secrets_dir),
                "DEMO_PORT": str(self.port),
            },
        )
        self.testbed = testbed
        projects.append(self.project)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def deploy(self, version: str) -> None:
        self.project.env["DEMO_APP_IMAGE"] = self.testbed.pinned(f"demo-app:{version}")
        self.project.run("up", "--detach", "--wait", "--wait-timeout", "60")

    def get(self, path: str) -> dict:
        resp = requests.get(self.url + path, timeout=5)
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def add_item(self, name: str) -> dict:
        resp = requests.post(self.url + "/items", json={"name": name}, timeout=5)
        assert resp.status_code == 201, f"POST /items: {resp.status_code} {resp.text}"
        return resp.json()


@pytest.fixture
def colors(testbed, demo_app_name, demo_secrets, demo_data) -> Iterator[dict[str, Color]]:
    projects: list[ComposeProject] = []
    try:
        yield {c: Color(testbed, demo_app_name, c, demo_secrets, projects) for c in ("blue", "green")}
    finally:
        for project in projects:
            project.down()


def test_demo_versions_through_expand_and_contract(colors: dict[str, Color], demo_data: ComposeProject) -> None:
    blue, green = colors["blue"], colors["green"]
    demo_data.psql_file(MIGRATIONS / "0001_create_items" / "expand.sql")

    blue.deploy("v1")
    wait_http(blue.url + "/health")
    assert blue.get("/")["version"] == "v1" and blue.get("/")["color"] == "blue"
    blue.add_item("written by v1")

    # Expand, then v2 next to v1: both colors serve, on the same networks and database.
    demo_data.psql_file(MIGRATIONS / "0002_display_name" / "expand.sql")
    green.deploy("v2")
    wait_http(green.url + "/health")
    assert green.get("/")["version"] == "v2" and green.get("/")["color"] == "green"
    green.add_item("written by v2")
    assert blue.get("/")["version"] == "v1"
    assert {i["name"] for i in green.get("/items")["items"]} == {"written by v1", "written by v2"}
    assert {i["name"] for i in blue.get("/items")["items"]} == {"written by v1", "written by v2"}

    # Backfill by hand (db_migration will do it in batches), retire v1, contract, then v3 on blue.
    blue.project.run("stop", "--timeout", "10")
    demo_data.run(
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "demo",
        "-d",
        "demo",
        "-c",
        "UPDATE items SET display_name = name WHERE display_name IS NULL",
    )
    demo_data.psql_file(MIGRATIONS / "0002_display_name" / "contract.sql")
    wait_http(green.url + "/health")
    green.add_item("written by v2 after contract")
    blue.deploy("v3")
    wait_http(blue.url + "/health")
    assert blue.get("/")["version"] == "v3"
    names = {i["name"] for i in blue.get("/items")["items"]}
    assert names == {"written by v1", "written by v2", "written by v2 after contract"}


def test_each_image_answers_health_and_root_when_its_schema_is_there(
    colors: dict[str, Color], demo_data: ComposeProject
) -> None:
    """A version whose schema is missing reports unhealthy, so `--wait` fails instead of serving."""
    demo_data.psql_file(MIGRATIONS / "0001_create_items" / "expand.sql")
    green = colors["green"]
    green.project.env["DEMO_APP_IMAGE"] = green.testbed.pinned("demo-app:v2")
    # No start period: the failed checks count at once and the container turns `unhealthy`, which
    # fails `--wait` by itself. (Compose 2.26 may exit 0 when --wait-timeout elapses while the
    # container is still `starting`, so the timeout must not be what fails it.)
    green.project.env["DEMO_HEALTH_START_PERIOD"] = "0s"
    result = green.project.run("up", "--detach", "--wait", "--wait-timeout", "60", check=False)
    assert result.returncode != 0, "v2 became healthy without the display_name column"
    assert "unhealthy" in result.stdout + result.stderr, result.stdout + result.stderr
    health = requests.get(green.url + "/health", timeout=5)
    assert health.status_code == 503 and "display_name" in health.text
