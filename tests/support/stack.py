"""One application as a release sees it, on the testbed: its networks and HAProxy (the lb role),
<app>-data (PostgreSQL with the demo schema), and both colors (blue v1, green v2)."""

from __future__ import annotations

import collections
import os
import secrets
import time
from pathlib import Path

import requests

from support.compose import ComposeProject, free_port, remove_network
from support.modules import run_module
from support.playbooks import PLAYBOOKS, local_inventory, run_playbook
from support.testbed import REPO_ROOT, Testbed

DEMO_DIR = REPO_ROOT / "examples" / "app"
DEMO_APP_UID = 10001  # the user the demo app image runs as (examples/app/Dockerfile)


def make_demo_secrets(directory: Path) -> Path:
    """A private directory with a random database password, root:10001 0440.

    Compose bind-mounts file secrets as they are (it ignores uid/gid/mode outside Swarm): the demo
    app's user and PostgreSQL's entrypoint (root) can read it, nobody else.
    """
    directory.mkdir(mode=0o700, parents=True)
    password = directory / "db_password"
    password.write_text(secrets.token_urlsafe(24) + "\n")
    os.chown(password, 0, DEMO_APP_UID)
    password.chmod(0o440)
    return directory


# The testbed image of each LB kind (the lb role's switchyard_lb_image).
LB_IMAGES = {"haproxy": "haproxy:2.6", "nginx": "nginx:1.22", "traefik": "traefik:3.7"}


class Stack:
    def __init__(self, testbed: Testbed, workdir: Path, app: str, kind: str = "haproxy") -> None:
        self.testbed = testbed
        self.kind = kind
        self.workdir = workdir
        self.app = app
        self.port = free_port()
        self.metrics_port = free_port()  # HAProxy's Prometheus exporter (the lb role's switchyard_lb_metrics_port)
        self.lb_dir = workdir / "lb"
        self.secrets = make_demo_secrets(workdir / "secrets")
        self.inventory = local_inventory(workdir)
        self.data = ComposeProject(
            f"{app}-data",
            [DEMO_DIR / "compose.data.yaml"],
            {
                "SWITCHYARD_APP": app,
                "DEMO_SECRETS_DIR": str(self.secrets),
                "DEMO_DB_IMAGE": testbed.pinned("postgres:15"),
            },
        )
        self.lb_vars = {
            "switchyard_app": app,
            "switchyard_lb_kind": kind,
            "switchyard_lb_image": testbed.image(LB_IMAGES[kind]),
            "switchyard_lb_dir": str(self.lb_dir),
            "switchyard_lb_bind_address": "127.0.0.1",
            "switchyard_lb_public_port": self.port,
            # HAProxy's exporter; the other kinds have none of their own here.
            "switchyard_lb_metrics_port": self.metrics_port if kind == "haproxy" else 0,
        }

    # -- paths and names -------------------------------------------------------------------------
    socket = property(lambda self: str(self.lb_dir / "run" / "admin.sock"))
    master_socket = property(lambda self: str(self.lb_dir / "run" / "master.sock"))
    config = property(lambda self: str(self.lb_dir / "etc" / "haproxy.cfg"))
    state_file = property(lambda self: str(self.lb_dir / "state" / "servers.state"))
    lb_container = property(lambda self: f"{self.app}-lb-{self.kind}-1")
    url = property(lambda self: f"http://127.0.0.1:{self.port}")
    metrics_url = property(lambda self: f"http://127.0.0.1:{self.metrics_port}/metrics")

    def lb_role(self, check: bool = True, **overrides):
        """The lb role on this stack; check=False returns a failed run instead of asserting success."""
        return run_playbook(PLAYBOOKS / "lb.yml", self.inventory, {**self.lb_vars, **overrides}, check=check)

    def color_args(self, color: str, version: str, **env: str) -> dict:
        env_file = self.workdir / f"{color}.env"
        variables = {
            "SWITCHYARD_APP": self.app,
            "SWITCHYARD_COLOR": color,
            "DEMO_SECRETS_DIR": str(self.secrets),
            **env,
        }
        env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
        project_dir = self.workdir / "project"
        project_dir.mkdir(exist_ok=True)
        base = project_dir / "compose.base.yaml"
        base.write_bytes((DEMO_DIR / "compose.base.yaml").read_bytes())
        return {
            "project": f"{self.app}-{color}",
            "files": [str(base)],
            "env_files": [str(env_file)],
            "images": {"api": self.testbed.image(f"demo-app:{version}")},
            "wait_timeout": 60,
        }

    def deploy(self, color: str, version: str, **env: str) -> dict:
        result = run_module("compose_project", self.color_args(color, version, **env))
        assert not result.get("failed"), result.get("msg")
        return result

    def up(self, **green_env: str) -> Stack:
        """LB, data, blue v1 and green v2 (green_env: the demo app's fault injection for green, such as
        DEMO_FAIL_RATE)."""
        self.lb_role()  # networks first: every other project uses them
        self.data.run("up", "--detach", "--wait", "--wait-timeout", "90")
        self.data.psql_file(DEMO_DIR / "migrations" / "0001_create_items" / "expand.sql")
        self.data.psql_file(DEMO_DIR / "migrations" / "0002_display_name" / "expand.sql")
        self.deploy("blue", "v1")
        self.deploy("green", "v2", **green_env)
        self.wait_up()
        return self

    def wait_up(self, seconds: float = 30) -> None:
        """Both colors healthy as the LB sees them, whatever its kind."""
        if self.kind == "nginx":
            self.wait_nginx({"blue": "UP", "green": "UP"}, seconds)
        elif self.kind == "haproxy":
            self.wait_status({"api_blue": "UP", "api_green": "UP"}, seconds)
        elif self.kind == "traefik":
            self.wait_traefik({"blue": "UP", "green": "UP"}, seconds)

    def down(self) -> None:
        for project in (f"{self.app}-blue", f"{self.app}-green", f"{self.app}-lb"):
            ComposeProject(project, []).down()
        self.data.down()
        for net in ("public", "edge", "data"):
            remove_network(f"{self.app}_{net}")

    # -- observing ------------------------------------------------------------------------------
    def weights(self, **args) -> dict:
        """haproxy_weight against this LB, with persistence and validation as the release uses it."""
        base = {
            "socket": self.socket,
            "backend": "be_api",
            "persist": {"config": self.config, "state_file": self.state_file},
            "validate_command": [
                "docker",
                "exec",
                self.lb_container,
                "haproxy",
                "-c",
                "-f",
                "/usr/local/etc/haproxy/{name}",
            ],
        }
        return {**base, **args}

    def servers(self) -> dict:
        result = run_module("haproxy_weight", {"socket": self.socket, "backend": "be_api"})
        assert not result.get("failed"), result.get("msg")
        return result["after"]

    def wait_status(self, wanted: dict[str, str], seconds: float = 30) -> dict:
        """The servers once they reach wanted; an LB just (re)started may refuse its socket for a moment."""
        deadline = time.monotonic() + seconds
        while True:
            result = run_module("haproxy_weight", {"socket": self.socket, "backend": "be_api"})
            if result.get("failed"):
                assert "cannot connect to the HAProxy socket" in result.get("msg", ""), result.get("msg")
                assert time.monotonic() < deadline, f"the LB's socket still refused after {seconds} s: {result['msg']}"
            else:
                servers = result["after"]
                if all(str(servers[n]["status"]).startswith(s) for n, s in wanted.items()):
                    return servers
                assert time.monotonic() < deadline, f"servers did not reach {wanted}: {servers}"
            time.sleep(0.3)

    def nginx(self, **args) -> dict:
        """nginx_upstream's options for route api of this stack's Nginx."""
        return {"dir": str(self.lb_dir), "container": self.lb_container, "route": "api", **args}

    def nginx_servers(self, route: str = "api") -> dict:
        result = run_module("nginx_upstream", self.nginx(route=route))
        assert not result.get("failed"), result.get("msg")
        return result["after"]

    def wait_nginx(self, wanted: dict[str, str], seconds: float = 30, route: str = "api") -> dict:
        deadline = time.monotonic() + seconds
        while True:
            servers = self.nginx_servers(route)
            if all(servers[c]["status"] == s for c, s in wanted.items()):
                return servers
            assert time.monotonic() < deadline, f"colors did not reach {wanted}: {servers}"
            time.sleep(0.3)

    def traefik(self, **args) -> dict:
        """traefik_weight's options for route api of this stack's Traefik."""
        return {"dir": str(self.lb_dir), "container": self.lb_container, "route": "api", **args}

    def traefik_servers(self, route: str = "api") -> dict:
        result = run_module("traefik_weight", self.traefik(route=route))
        assert not result.get("failed"), result.get("msg")
        return result["after"]

    def wait_traefik(self, wanted: dict[str, str], seconds: float = 30, route: str = "api") -> dict:
        deadline = time.monotonic() + seconds
        while True:
            servers = self.traefik_servers(route)
            if all(servers[c]["status"] == s for c, s in wanted.items()):
                return servers
            assert time.monotonic() < deadline, f"colors did not reach {wanted}: {servers}"
            time.sleep(0.3)

    def colors(self, count: int, headers: dict | None = None) -> collections.Counter:
        """Send count requests through the LB (one keep-alive connection); count answers per color."""
        seen: collections.Counter = collections.Counter()
        with requests.Session() as session:
            for _request in range(count):
                resp = session.get(self.url + "/", headers=headers or {}, timeout=5)
                seen[resp.json()["color"] if resp.status_code == 200 else f"HTTP {resp.status_code}"] += 1
        return seen


def shift(stack: Stack, blue: int, green: int) -> None:
    """Weights of api_blue and api_green (both ready) on the stack's HAProxy, persisted as the release does."""
    result = run_module(
        "haproxy_weight",
        stack.weights(
            weights={"api_blue": blue, "api_green": green}, states={"api_blue": "ready", "api_green": "ready"}
        ),
    )
    assert not result.get("failed"), result.get("msg")
