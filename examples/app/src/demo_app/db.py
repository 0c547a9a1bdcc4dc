"""The PostgreSQL store: a psycopg2 ThreadedConnectionPool running the SQL of versions.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.pool

from .app import StoreError, StoreUnavailable
from .config import Config
from .versions import COLUMNS_SQL, ItemSQL, item_sql, schema_problem

POOL_WAIT_S = 5.0  # how long a request waits for a free connection before answering 503


class _Broken(Exception):
    """The connection died under the statement (server restart, network): it was discarded."""


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def as_item(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "created_at": row[2].isoformat() if row[2] else None}


class PgStore:
    def __init__(self, config: Config):
        self._gen = config.generation
        self._sql: ItemSQL = item_sql(self._gen)
        self._size = config.db_pool_size
        # minconn=0 so that nothing connects here: the app starts (and reports unhealthy) while the
        # database is not up yet, instead of crash-looping. The password is only handed to libpq.
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0,
            self._size,
            host=config.db_host,
            port=config.db_port,
            dbname=config.db_name,
            user=config.db_user,
            password=config.db_password,
            application_name=config.application_name,
            connect_timeout=config.db_connect_timeout_s,
            options=f"-c statement_timeout={config.db_statement_timeout_ms}",
        )
        # Then keep up to db_pool_size idle connections: psycopg2 closes a returned connection
        # when minconn are already idle, which would mean one new connection per request.
        self._pool.minconn = self._size
        # getconn() raises PoolError when every connection is out instead of waiting: queue here.
        self._slots = threading.BoundedSemaphore(self._size)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise StoreUnavailable(f"all {self._size} database connections busy for {POOL_WAIT_S:g} s")
        try:
            try:
                conn = self._pool.getconn()
            except psycopg2.OperationalError as exc:
                raise StoreUnavailable(first_line(exc)) from None
            try:
                if not conn.autocommit:
                    conn.autocommit = True  # one statement per request: no BEGIN/COMMIT round trips
                with conn.cursor() as cur:
                    yield cur
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if conn.closed:
                    raise _Broken(first_line(exc)) from exc
                raise
            finally:
                self._pool.putconn(conn, close=bool(conn.closed))
        finally:
            self._slots.release()

    def _run(self, which: str, params: dict[str, Any], *, idempotent: bool) -> list[tuple[Any, ...]]:
        # Reads may retry on a dead connection: after a database restart every idle pooled
        # connection is dead, and each failure discards one. Writes never retry (unknown outcome).
        for attempt in range(self._size + 2):
            sql = self._sql
            try:
                with self._cursor() as cur:
                    cur.execute(getattr(sql, which), params)
                    return cur.fetchall()
            except _Broken as exc:
                if not idempotent or attempt > self._size:
                    raise StoreUnavailable(str(exc)) from None
            except psycopg2.errors.UndefinedColumn as exc:
                # v2 once the 0002 contract dropped `name`: re-read the schema, retry once with
                # the display_name-only statements (the failed statement changed nothing).
                if attempt == 0:
                    self._refresh()
                    if self._sql != sql:
                        continue
                raise StoreError(first_line(exc), exc.pgcode) from None
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                raise StoreUnavailable(first_line(exc)) from None
            except psycopg2.Error as exc:
                raise StoreError(first_line(exc), exc.pgcode) from None
        raise AssertionError("unreachable")

    def _refresh(self) -> str | None:
        """Read the columns of items, pick the statements that fit, return the schema problem."""
        for attempt in range(self._size + 2):
            try:
                with self._cursor() as cur:
                    cur.execute(COLUMNS_SQL)
                    columns = dict(cur.fetchall())
                break
            except _Broken as exc:
                if attempt > self._size:
                    raise StoreUnavailable(str(exc)) from None
            except psycopg2.Error as exc:
                raise StoreUnavailable(first_line(exc)) from None
        sql = item_sql(self._gen, has_name_column="name" in columns or not columns)
        if sql != self._sql:
            print(f"demo-app: schema changed, items columns now {sorted(columns)}: switching statements", flush=True)
            self._sql = sql
        return schema_problem(self._gen, columns)

    # -- the Store interface used by app.App ------------------------------------------------------

    def list_items(self, limit: int) -> list[dict[str, Any]]:
        return [as_item(row) for row in self._run("select", {"limit": limit}, idempotent=True)]

    def add_item(self, name: str) -> dict[str, Any]:
        return as_item(self._run("insert", {"name": name}, idempotent=False)[0])

    def check(self) -> str | None:
        return self._refresh()

    def close(self) -> None:
        self._pool.closeall()
