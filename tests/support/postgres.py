"""A PostgreSQL server for the migration tests: the testbed's image, published on 127.0.0.1,
with one fresh database per test."""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import psycopg2

from support.compose import docker, free_port
from support.testbed import Testbed


class Postgres:
    def __init__(self, testbed: Testbed, workdir: Path) -> None:
        self.name = f"sytest-pg-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.password_file = workdir / "pg_password"
        self.password_file.write_text(secrets.token_urlsafe(18) + "\n")
        self.password_file.chmod(0o600)
        self.image = testbed.pinned("postgres:15")

    def start(self) -> Postgres:
        docker(
            "run",
            "--detach",
            "--name",
            self.name,
            "--publish",
            f"127.0.0.1:{self.port}:5432",
            "--env",
            "POSTGRES_USER=switchyard",
            "--env",
            "POSTGRES_PASSWORD_FILE=/run/secrets/pw",
            "--volume",
            f"{self.password_file}:/run/secrets/pw:ro",
            "--tmpfs",
            "/var/lib/postgresql/data",
            self.image,
        )
        deadline = time.monotonic() + 60
        while docker("inspect", "--format", "{{.State.Health.Status}}", self.name).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", self.name).stderr[-2000:]
            time.sleep(0.3)
        return self

    def stop(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)

    def connect(self, database: str = "postgres", application_name: str = "sytest"):
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=database,
            user="switchyard",
            password=self.password_file.read_text().strip(),
            application_name=application_name,
        )
        conn.autocommit = True
        return conn

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:10]}"
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return name

    def query(self, database: str, sql: str, args: tuple = ()) -> list[tuple]:
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def module_args(self, database: str, **extra) -> dict:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "database": database,
            "user": "switchyard",
            "password_file": str(self.password_file),
            **extra,
        }
