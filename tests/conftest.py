"""Fixtures shared by every test suite; they use the testbed brought up by `make testbed`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.compose import ComposeProject, ensure_network, remove_network, unique_name
from support.postgres import Postgres
from support.stack import make_demo_secrets
from support.testbed import REPO_ROOT, Testbed

# `make test` hands whole files to its workers (--dist loadfile) in collection order: a long file collected last ends
# the run on one worker while the other idles. So the longest files go first (rough seconds per file on CI, from
# --durations; a file not listed counts by its directory: e2e, then integration, then unit).
SLOW_FILES = {
    "tests/e2e/test_lb_kinds.py": 830,
    "tests/e2e/test_fleet_release.py": 880,
    "tests/e2e/test_faults.py": 800,
    "tests/e2e/test_release.py": 750,
    "tests/e2e/test_strategy_ab.py": 590,
    "tests/e2e/test_drill.py": 450,
    "tests/e2e/test_strategy_bluegreen.py": 400,
    "tests/e2e/test_recreate.py": 330,
    "tests/e2e/test_contract_and_rollback_paths.py": 300,
    "tests/e2e/test_verified_release.py": 250,
    "tests/e2e/test_gate_fails_closed.py": 200,
    "tests/e2e/test_compose_job_migrations.py": 200,
}
DIRECTORY_ORDER = ("tests/e2e/", "tests/integration/", "tests/unit/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # not an xdist worker: the serial part keeps its order (the testbed's re-run before the daemon restart)

    def weight(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        rank = next((i for i, prefix in enumerate(DIRECTORY_ORDER) if path.startswith(prefix)), len(DIRECTORY_ORDER))
        return -SLOW_FILES.get(path, 0), rank

    items.sort(key=weight)  # stable: a file's tests keep their order, files of equal weight theirs


DEMO_DIR = REPO_ROOT / "examples" / "app"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    return Testbed.load()


@pytest.fixture
def demo_files(tmp_path: Path) -> list[Path]:
    """Copies of the demo's color files, so generated override files land in tmp_path."""
    directory = tmp_path / "project"
    directory.mkdir()
    copies = []
    for name in ("compose.base.yaml", "compose.local.yaml"):
        copies.append(directory / name)
        shutil.copy(DEMO_DIR / name, copies[-1])
    return copies


@pytest.fixture
def demo_secrets(tmp_path: Path) -> Path:
    """A private secrets directory with a random database password (see make_demo_secrets)."""
    return make_demo_secrets(tmp_path / "secrets")


@pytest.fixture
def demo_app_name(testbed: Testbed) -> Iterator[str]:
    """A fresh application name with its external networks (<app>_edge, <app>_data internal)."""
    app = unique_name("app")
    networks = {f"{app}_edge": True, f"{app}_data": True, f"{app}_public": False}
    for net, internal in networks.items():
        ensure_network(net, internal)
    yield app
    for net in networks:
        remove_network(net)


@pytest.fixture
def demo_data(testbed: Testbed, demo_app_name: str, demo_secrets: Path) -> Iterator[ComposeProject]:
    """The demo's <app>-data project (PostgreSQL), up and healthy, with an empty database."""
    project = ComposeProject(
        name=f"{demo_app_name}-data",
        files=[DEMO_DIR / "compose.data.yaml"],
        env={
            "SWITCHYARD_APP": demo_app_name,
            "DEMO_SECRETS_DIR": str(demo_secrets),
            "DEMO_DB_IMAGE": testbed.pinned("postgres:15"),
        },
    )
    try:
        project.run("up", "--detach", "--wait", "--wait-timeout", "90")
        yield project
    finally:
        project.down()


@pytest.fixture(scope="module")
def pg(testbed: Testbed, tmp_path_factory) -> Iterator[Postgres]:
    """A PostgreSQL server of the testbed's image, for the tests of one module (each makes its databases)."""
    server = Postgres(testbed, tmp_path_factory.mktemp("pg")).start()
    try:
        yield server
    finally:
        server.stop()
