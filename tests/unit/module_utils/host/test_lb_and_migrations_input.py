"""What preflight reads through the LB interface (recorded HAProxy output) and the migrations it is given."""

from __future__ import annotations

import pytest
from support.recorded import HAPROXY

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.host import preflight
from ansible_collections.switchyard.release.plugins.module_utils.host.database import check_migration_keys
from ansible_collections.switchyard.release.plugins.module_utils.host.preflight import PreflightManager
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import LBUnreachable
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.backend import HAProxy


class RecordedRunner:
    """Answers every command with one recorded (rc, stdout, stderr) and keeps the commands."""

    def __init__(self, rc: int, out: str, err: str) -> None:
        self.answer = (rc, out, err)
        self.commands: list[list[str]] = []

    def run(self, args, what, check=True, data=None):
        self.commands.append(list(args))
        return self.answer


def haproxy(runner) -> HAProxy:
    return HAProxy({"dir": "/var/lib/switchyard/shop/lb", "container": "shop-lb-haproxy-1"}, runner)


def test_an_invalid_configuration_fails_lb_config_with_haproxys_alerts() -> None:
    runner = RecordedRunner(1, "", (HAPROXY / "haproxy-c-invalid.txt").read_text())
    check = PreflightManager.lb_config(haproxy(runner))
    assert runner.commands == [
        ["docker", "exec", "shop-lb-haproxy-1", "haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    ]
    assert check["status"] == "fail" and check["value"] == "invalid"
    assert "haproxy.cfg:9] : balance only supports" in check["message"] and "NOTICE" not in check["message"]


def test_a_stopped_lb_container_is_unreachable_not_an_invalid_configuration() -> None:
    runner = RecordedRunner(1, "", "Error response from daemon: container 0f3a is not running\n")
    with pytest.raises(LBUnreachable, match="cannot run haproxy -c in shop-lb-haproxy-1"):
        haproxy(runner).validate_config()
    assert "cannot be checked" in PreflightManager.lb_config(haproxy(runner))["message"]


@pytest.mark.parametrize(
    "key", ["../0001_x/expand.sql", "0001_x/run.sh", "/etc/0001_x/expand.sql", "0001_x/sub/expand.sql", "x/expand.sql"]
)
def test_a_migrations_key_outside_the_layout_is_refused_naming_it(key: str) -> None:
    with pytest.raises(InvalidParameters, match="migrations key") as caught:
        check_migration_keys({"0001_create_items/expand.sql": "", key: "DROP TABLE items"})
    assert repr(key) in caught.value.msg and "expand.sql, backfill.yml, contract.sql" in caught.value.msg


class Module:
    """What PreflightManager reads of the AnsibleModule: its params."""

    def __init__(self, **params) -> None:
        self.params = {"skip": [], "docker_cli": "docker", "migrations": {}, "lb": None, "routes": [], **params}


def test_pyyaml_is_needed_only_when_a_backfill_yml_is_among_the_migrations(monkeypatch) -> None:
    monkeypatch.setattr(preflight, "HAS_YAML", False)
    monkeypatch.setattr(preflight, "HAS_PSYCOPG2", True)
    monkeypatch.setattr(preflight, "HAS_PGLAST", True)
    sql_only = Module(migrations={"0002_display_name/expand.sql": "ALTER TABLE items ADD COLUMN d text"})
    assert PreflightManager(sql_only, runner=object()).missing_libraries() is None
    backfill = Module(migrations={**sql_only.params["migrations"], "0002_display_name/backfill.yml": "table: items"})
    assert "PyYAML" in PreflightManager(backfill, runner=object()).missing_libraries()


def test_the_lb_configuration_is_checked_with_the_modules_docker_cli(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "admin.sock").touch()  # the LB exists
    runner = RecordedRunner(0, "Configuration file is valid\n", "")
    module = Module(
        docker_cli="/opt/docker/bin/docker",
        lb={"dir": str(tmp_path), "container": "shop-lb-haproxy-1"},
        skip=["lb", "lb_admin"],
    )
    checks, _servers = PreflightManager(module, runner=runner).lb_checks()
    assert [c["status"] for c in checks] == ["skip", "skip", "pass"]
    assert runner.commands == [
        [
            "/opt/docker/bin/docker",
            "exec",
            "shop-lb-haproxy-1",
            "haproxy",
            "-c",
            "-f",
            "/usr/local/etc/haproxy/haproxy.cfg",
        ]
    ]
