"""Alembic's environment for the demo application: the same database settings as the app (DB_HOST, DB_PORT,
DB_NAME, DB_USER and the password read from the file DB_PASSWORD_FILE names - never an environment variable's
value or a command line), a short lock_timeout so that a migration waiting for a lock fails instead of
queueing the live color's queries behind it, and application_name demo-<color>-migrate (a contract's check for
the old color's sessions, "%-<old color>-%", never counts the job itself)."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool


def password() -> str | None:
    path = os.environ.get("DB_PASSWORD_FILE", "").strip()
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError as exc:  # the file's name, never its content
        raise SystemExit(f"DB_PASSWORD_FILE={path}: {exc.strerror}") from None


def url() -> URL:
    return URL.create(
        "postgresql+psycopg2",
        username=os.environ.get("DB_USER", "demo"),
        password=password(),
        host=os.environ.get("DB_HOST", "db"),
        port=int(os.environ.get("DB_PORT", "5432")),
        database=os.environ.get("DB_NAME", "demo"),
    )


def run() -> None:
    color = os.environ.get("APP_COLOR", "")
    lock_timeout = os.environ.get("MIGRATION_LOCK_TIMEOUT", "5s")
    engine = create_engine(
        url(),
        poolclass=NullPool,
        connect_args={
            "application_name": f"demo-{color}-migrate"[:63],
            "connect_timeout": 5,
            "options": f"-c lock_timeout={lock_timeout}",
        },
    )
    with engine.connect() as connection:
        # One transaction per revision: a failure keeps what the revisions before it did.
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)
if context.is_offline_mode():
    raise SystemExit("the demo's migrations run against the database (no --sql)")
run()
