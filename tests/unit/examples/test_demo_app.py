"""Unit tests of the demo application (examples/app): no Docker, no PostgreSQL.

The SQL each version runs and the fault injection are pure functions; the HTTP server runs for
real on 127.0.0.1 with an in-memory store handed to App in place of PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

APP_SRC = Path(__file__).resolve().parents[3] / "examples" / "app" / "src"
sys.path.insert(0, str(APP_SRC))

from demo_app.app import App, StoreError, StoreUnavailable  # noqa: E402
from demo_app.config import Config, ConfigError, Faults  # noqa: E402
from demo_app.server import DemoServer  # noqa: E402
from demo_app.versions import generation, item_sql, schema_problem  # noqa: E402


def uses_name_column(sql: str) -> bool:
    """Whether a statement mentions the column `name` (not display_name, not the %(name)s parameter)."""
    return re.search(r"\bname\b", re.sub(r"%\(\w+\)s", "?", sql)) is not None


class MemoryStore:
    """Stands in for PgStore: same interface, a list in memory."""

    def __init__(self, problem: str | None = None):
        self.items: list[dict] = []
        self.problem = problem
        self.checks = 0
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def list_items(self, limit: int) -> list[dict]:
        if self.fail_with:
            raise self.fail_with
        with self._lock:
            return list(reversed(self.items))[:limit]

    def add_item(self, name: str) -> dict:
        if self.fail_with:
            raise self.fail_with
        with self._lock:
            item = {"id": len(self.items) + 1, "name": name, "created_at": "2026-01-01T00:00:00+00:00"}
            self.items.append(item)
            return item

    def check(self) -> str | None:
        self.checks += 1
        return self.problem

    def close(self) -> None:
        pass


def make_app(store: MemoryStore | None = None, *, faults: Faults | None = None, rand=lambda: 0.5, **config) -> App:
    config.setdefault("version", "v2")
    config.setdefault("color", "green")
    cfg = Config(faults=faults or Faults(), **config)
    return App(cfg, store if store is not None else MemoryStore(), rand=rand, sleep=lambda s: None)


def body(response) -> dict:
    return json.loads(response.body)


# -- versions: the SQL of each version (pure) ----------------------------------------------------


@pytest.mark.parametrize(("version", "expected"), [("v1", 1), ("2", 2), ("v2.1.0", 2), ("v3-rc1", 3), (" v3 ", 3)])
def test_generation_from_version(version, expected):
    assert generation(version) == expected


@pytest.mark.parametrize("version", ["", "v0", "v4", "latest", ".1"])
def test_generation_rejects_unknown_versions(version):
    with pytest.raises(ValueError, match="APP_VERSION"):
        generation(version)


def test_v1_uses_only_name():
    sql = item_sql(1)
    assert "display_name" not in sql.insert + sql.select
    assert uses_name_column(sql.insert) and uses_name_column(sql.select)


def test_v2_writes_both_columns_and_reads_display_name_with_fallback():
    sql = item_sql(2)
    assert "INSERT INTO items (name, display_name) VALUES (%(name)s, %(name)s)" in sql.insert
    assert "COALESCE(display_name, name)" in sql.select


def test_v2_after_contract_and_v3_use_only_display_name():
    assert item_sql(2, has_name_column=False) == item_sql(3)
    for sql in (item_sql(3), item_sql(3, has_name_column=True)):
        assert not uses_name_column(sql.insert) and not uses_name_column(sql.select)
        assert "display_name" in sql.insert and "display_name" in sql.select


@pytest.mark.parametrize(
    ("gen", "columns", "problem"),
    [
        (1, {}, "table items not found"),
        (1, {"id": True, "name": True}, None),
        (1, {"id": True, "name": True, "display_name": False}, None),  # after expand
        (1, {"id": True, "name": True, "display_name": True}, "v1 cannot insert"),
        (1, {"id": True, "display_name": True}, "v1 is incompatible"),  # after contract
        (2, {"id": True, "name": True}, "run the expand of migration 0002"),
        (2, {"id": True, "name": True, "display_name": False}, None),
        (2, {"id": True, "display_name": True}, None),  # contract ran while v2 is live
        (3, {"id": True, "name": True, "display_name": False}, "needs the 0002 contract"),
        (3, {"id": True, "name": False, "display_name": True}, None),
        (3, {"id": True, "display_name": True}, None),
    ],
)
def test_schema_problem(gen, columns, problem):
    found = schema_problem(gen, columns)
    assert found is None if problem is None else problem in found


# -- config and fault injection (pure) -----------------------------------------------------------


def test_faults_fail_only_non_health_requests_below_the_rate():
    faults = Faults(fail_rate=0.25)
    assert faults.fails("/", 0.1)
    assert not faults.fails("/", 0.25)
    assert not faults.fails("/health", 0.0)
    assert not Faults().fails("/items", 0.0)
    assert Faults(fail_rate=1.0).fails("/items", 0.999)
    assert Faults(extra_latency_ms=250).delay_s("/") == 0.25
    assert Faults(extra_latency_ms=250).delay_s("/health") == 0.0


def test_config_from_env_reads_the_password_file_and_never_shows_it(tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("hunter2-secret\n")
    env = {
        "APP_VERSION": "v3",
        "APP_COLOR": "green",
        "DB_PASSWORD_FILE": str(secret),
        "FAIL_RATE": "0.1",
        "EXTRA_LATENCY_MS": "20",
        "UNHEALTHY": "1",
    }
    config = Config.from_env(env)
    assert config.db_password == "hunter2-secret"
    assert "hunter2" not in repr(config)
    assert config.application_name == "demo-green-v3"
    assert config.generation == 3
    assert config.faults == Faults(fail_rate=0.1, extra_latency_ms=20, unhealthy=True)
    assert not config.access_log


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAIL_RATE": "1.5"}, "FAIL_RATE=1.5"),
        ({"FAIL_RATE": "often"}, "not a number"),
        ({"UNHEALTHY": "maybe"}, "UNHEALTHY"),
        ({"CPU_BURN_MS": "-1"}, "CPU_BURN_MS=-1"),
        ({"LOG_TRACEBACKS": "2.5"}, "LOG_TRACEBACKS=2.5: must be a whole number"),
        ({"CRASH_AFTER_S": "soon"}, "CRASH_AFTER_S='soon': not a number"),
        ({"APP_VERSION": "v9"}, "APP_VERSION"),
        ({"DB_PASSWORD_FILE": "/nonexistent/db_password"}, "DB_PASSWORD_FILE=/nonexistent/db_password"),
    ],
)
def test_config_errors_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.from_env(env)


def test_container_faults_from_env():
    faults = Config.from_env({"CPU_BURN_MS": "20", "LOG_TRACEBACKS": "3", "CRASH_AFTER_S": "7.5"}).faults
    assert faults == Faults(cpu_burn_ms=20, log_tracebacks=3, crash_after_s=7.5)
    assert Config.from_env({}).faults == Faults()
    assert faults.burn_s("/") == 0.02 and faults.burn_s("/health") == 0.0
    assert [n for n in range(1, 10) if faults.logs_traceback("/items", n)] == [3, 6, 9]
    assert not faults.logs_traceback("/health", 3)


def test_cpu_burn_uses_cpu_time_and_still_answers_200():
    app = make_app(faults=Faults(cpu_burn_ms=30))
    before = time.thread_time()
    assert app.handle("GET", "/").status == 200
    assert time.thread_time() - before >= 0.03
    before = time.thread_time()
    app.handle("GET", "/health")
    assert time.thread_time() - before < 0.03


def test_log_tracebacks_prints_a_real_traceback_every_nth_request(capsys):
    app = make_app(faults=Faults(log_tracebacks=2))
    statuses = [app.handle("GET", "/").status for _n in range(4)] + [app.handle("GET", "/health").status]
    assert statuses == [200, 200, 200, 200, 200]
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last):") == 2
    assert "RuntimeError: injected error (LOG_TRACEBACKS=2)" in err


def test_fail_rate_answers_500_except_health():
    draws = iter([0.05, 0.95, 0.05])
    app = make_app(faults=Faults(fail_rate=0.1), rand=lambda: next(draws))
    first = app.handle("GET", "/")
    assert first.status == 500
    assert body(first)["error"] == "injected failure (FAIL_RATE)"
    assert app.handle("GET", "/").status == 200
    assert app.handle("GET", "/health").status == 200  # health never draws
    assert app.handle("GET", "/items").status == 500


def test_fail_rate_is_a_fraction_of_requests():
    import random

    rng = random.Random(42)
    app = make_app(faults=Faults(fail_rate=0.2), rand=rng.random)
    failures = sum(app.handle("GET", "/").status == 500 for _i in range(5000))
    assert 850 < failures < 1150


def test_extra_latency_sleeps_before_answering_but_not_for_health():
    slept: list[float] = []
    cfg = Config(faults=Faults(extra_latency_ms=150))
    app = App(cfg, MemoryStore(), sleep=slept.append)
    app.handle("GET", "/")
    app.handle("GET", "/health")
    assert slept == [0.15]


def test_unhealthy_answers_503_without_asking_the_database():
    store = MemoryStore()
    app = make_app(store, faults=Faults(unhealthy=True))
    response = app.handle("GET", "/health")
    assert response.status == 503
    assert body(response)["reason"] == "UNHEALTHY=1"
    assert store.checks == 0
    assert app.handle("GET", "/").status == 200


def test_health_reports_schema_problem_and_caches_the_database_check():
    now = [100.0]
    store = MemoryStore(problem="column items.display_name missing")
    cfg = Config(version="v2", health_cache_s=1.0)
    app = App(cfg, store, clock=lambda: now[0])
    for _i in range(50):
        response = app.handle("GET", "/health")
    assert response.status == 503
    assert body(response)["reason"] == "column items.display_name missing"
    assert store.checks == 1
    store.problem = None
    now[0] += 1.5
    assert app.handle("GET", "/health").status == 200
    assert store.checks == 2


def test_health_without_database_check():
    store = MemoryStore(problem="down")
    app = make_app(store, health_db_check=False)
    assert app.handle("GET", "/health").status == 200
    assert store.checks == 0


def test_health_is_unhealthy_when_the_check_raises():
    store = MemoryStore()
    store.check = lambda: (_x for _x in ()).throw(StoreUnavailable("connection refused"))
    response = make_app(store).handle("GET", "/health")
    assert response.status == 503
    assert "connection refused" in body(response)["reason"]


# -- request handling (pure) ---------------------------------------------------------------------


def test_root_reports_version_and_color_without_the_database():
    store = MemoryStore()
    store.fail_with = AssertionError("GET / must not touch the database")
    response = make_app(store, version="v3", color="blue").handle("GET", "/")
    assert response.status == 200
    assert body(response)["version"] == "v3"
    assert body(response)["color"] == "blue"


def test_items_round_trip_and_validation():
    app = make_app()
    created = app.handle("POST", "/items", b'{"name": " widget "}')
    assert created.status == 201
    assert body(created)["name"] == "widget"
    listed = app.handle("GET", "/items?limit=10")
    assert [item["name"] for item in body(listed)["items"]] == ["widget"]
    assert app.handle("POST", "/items", b"not json").status == 400
    assert app.handle("POST", "/items", b'{"name": ""}').status == 400
    assert app.handle("POST", "/items", b'["x"]').status == 400
    assert app.handle("GET", "/items?limit=0").status == 400
    assert app.handle("DELETE", "/items").status == 405
    assert app.handle("GET", "/nope").status == 404


def test_database_errors_map_to_503_and_500():
    store = MemoryStore()
    app = make_app(store)
    store.fail_with = StoreUnavailable("connection refused")
    assert app.handle("GET", "/items").status == 503
    store.fail_with = StoreError('null value in column "name"', code="23502")
    response = app.handle("POST", "/items", b'{"name": "x"}')
    assert response.status == 500
    assert body(response)["sqlstate"] == "23502"


# -- the real HTTP server ------------------------------------------------------------------------


@pytest.fixture
def serve():
    servers: list[DemoServer] = []

    def start(app: App) -> DemoServer:
        server = DemoServer(("127.0.0.1", 0), app)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if not server.draining:
            server.drain(1)
        server.server_close()


def get(conn: http.client.HTTPConnection, path: str, method: str = "GET", data: bytes | None = None):
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    response = conn.getresponse()
    return response, response.read()


def test_server_root_health_and_items(serve):
    server = serve(make_app(version="v2", color="green"))
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    response, data = get(conn, "/")
    assert response.status == 200
    assert response.version == 11
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data)["version"] == "v2"
    assert json.loads(data)["color"] == "green"
    response, data = get(conn, "/health")
    assert (response.status, json.loads(data)["status"]) == (200, "ok")
    response, data = get(conn, "/items", "POST", b'{"name": "gear"}')
    assert response.status == 201
    response, data = get(conn, "/items")
    assert [item["name"] for item in json.loads(data)["items"]] == ["gear"]
    response, data = get(conn, "/health", "HEAD")
    assert (response.status, data) == (200, b"")
    conn.close()


def test_server_rejects_oversized_bodies(serve):
    server = serve(make_app())
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    response, _body = get(conn, "/items", "POST", b"x" * (65 * 1024))
    assert response.status == 413
    assert response.getheader("Connection") == "close"


def test_server_keep_alive_with_tcp_nodelay_is_fast(serve):
    server = serve(make_app())
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    get(conn, "/")
    local_port = conn.sock.getsockname()[1]
    accepted = [sock for sock in server._connections if sock.getpeername()[1] == local_port]
    assert len(accepted) == 1
    assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    start = time.perf_counter()
    for _i in range(100):
        assert get(conn, "/")[0].status == 200
        assert get(conn, "/health")[0].status == 200
    elapsed = time.perf_counter() - start
    # A Nagle / delayed-ACK stall costs ~40 ms per response: 200 of them would take ~8 s.
    assert elapsed < 2.0, f"200 keep-alive requests took {elapsed:.2f} s"
    assert conn.sock.getsockname()[1] == local_port  # still the same connection
    assert server.open_connections == 1


def test_drain_finishes_in_flight_requests_and_closes_idle_connections(serve):
    store = MemoryStore()
    config = Config(faults=Faults(extra_latency_ms=400))
    server = serve(App(config, store))
    port = server.server_port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert get(idle, "/health")[0].status == 200  # now an idle keep-alive connection
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    results: dict = {}

    def slow_request():
        response, data = get(busy, "/")
        results.update(status=response.status, connection=response.getheader("Connection"), data=data)

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.15)  # the slow request is in flight
    started = time.monotonic()
    left = server.drain(5)
    worker.join(5)
    assert left == 0
    assert time.monotonic() - started < 2
    assert results["status"] == 200
    assert results["connection"] == "close"
    assert idle.sock.recv(1) == b""  # the server closed the idle connection
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).recv(1)


# -- the process: python3 -m demo_app ------------------------------------------------------------


def run_app(env: dict[str, str], **kwargs) -> subprocess.Popen:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(APP_SRC),
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "demo_app"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_crash_on_start_exits_non_zero():
    proc = run_app({"CRASH_ON_START": "1"})
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert "CRASH_ON_START" in err


def test_crash_after_exits_4_after_that_uptime_and_serves_until_then():
    with socket.socket() as probe:  # a free port for the child
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    proc = run_app({"PORT": str(port), "LISTEN_HOST": "127.0.0.1", "CRASH_AFTER_S": "1", "HEALTH_DB_CHECK": "0"})
    try:
        assert "listening" in proc.stdout.readline()
        response, _data = get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/health")
        assert response.status == 200
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 4
        assert "CRASH_AFTER_S=1 reached" in err
        assert time.monotonic() - started >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_setting_exits_2():
    proc = run_app({"FAIL_RATE": "2"})
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "FAIL_RATE=2" in err


def test_sigterm_drains_and_exits_0():
    with socket.socket() as probe:  # a free port for the child
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The database is unreachable (port 1): the app still starts; /health says why it is red.
    proc = run_app({"PORT": str(port), "LISTEN_HOST": "127.0.0.1", "DB_HOST": "127.0.0.1", "DB_PORT": "1"})
    try:
        assert "listening" in proc.stdout.readline()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        response, data = get(conn, "/")
        assert response.status == 200
        response, data = get(conn, "/health")
        assert response.status == 503
        assert "database" in json.loads(data)["reason"]
        proc.terminate()
        out, _err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
