"""Settings from the environment (see examples/app/README.md for the list)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .versions import generation

TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting is missing or malformed; the process exits with status 2."""


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name)
    if value is None:
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ConfigError(f"{name}={value!r}: expected 1 or 0")


def number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw}: must be between {lo:g} and {hi:g}")
    return value


def whole(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = number(env, name, default, lo, hi)
    if value != int(value):
        raise ConfigError(f"{name}={env[name].strip()}: must be a whole number")
    return int(value)


@dataclass(frozen=True)
class Faults:
    """Fault injection, for exercising canary gates and rollbacks (all off by default)."""

    fail_rate: float = 0.0  # FAIL_RATE: fraction of requests (not /health) answered 500
    extra_latency_ms: float = 0.0  # EXTRA_LATENCY_MS: added before answering (not /health)
    unhealthy: bool = False  # UNHEALTHY=1: /health answers 503
    cpu_burn_ms: float = 0.0  # CPU_BURN_MS: CPU time burnt per request (not /health), still answered 200
    log_tracebacks: int = 0  # LOG_TRACEBACKS=N: a Python traceback on stderr every N requests (not /health)
    crash_after_s: float = 0.0  # CRASH_AFTER_S: the process exits (status 4) after that much uptime

    def fails(self, path: str, draw: float) -> bool:
        """Whether a request for ``path`` is answered 500; ``draw`` is uniform in [0, 1)."""
        return path != "/health" and draw < self.fail_rate

    def delay_s(self, path: str) -> float:
        return 0.0 if path == "/health" else self.extra_latency_ms / 1000.0

    def burn_s(self, path: str) -> float:
        """CPU seconds to burn answering ``path``."""
        return 0.0 if path == "/health" else self.cpu_burn_ms / 1000.0

    def logs_traceback(self, path: str, count: int) -> bool:
        """Whether the ``count``-th request (from 1, /health not counted) logs a traceback."""
        return path != "/health" and self.log_tracebacks > 0 and count % self.log_tracebacks == 0


@dataclass(frozen=True)
class Config:
    version: str = "v1"
    color: str = "blue"
    listen_host: str = "0.0.0.0"
    port: int = 8000
    db_host: str = "db"
    db_port: int = 5432
    db_name: str = "demo"
    db_user: str = "demo"
    db_password: str | None = field(default=None, repr=False)  # never printed
    db_pool_size: int = 8
    db_connect_timeout_s: int = 3
    db_statement_timeout_ms: int = 5000
    health_db_check: bool = True
    health_cache_s: float = 1.0
    shutdown_grace_s: float = 10.0
    access_log: bool = False
    faults: Faults = Faults()

    @property
    def generation(self) -> int:
        return generation(self.version)

    @property
    def application_name(self) -> str:
        """What pg_stat_activity shows for this color's sessions (PostgreSQL keeps 63 bytes)."""
        return f"demo-{self.color}-{self.version}"[:63]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        version = env.get("APP_VERSION", "v1").strip()
        try:
            generation(version)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        password = None
        password_file = env.get("DB_PASSWORD_FILE", "").strip()
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as fh:
                    password = fh.readline().rstrip("\r\n")
            except OSError as exc:
                # The message names the file, never its content.
                raise ConfigError(f"DB_PASSWORD_FILE={password_file}: {exc.strerror}") from None
        return cls(
            version=version,
            color=env.get("APP_COLOR", "blue").strip() or "blue",
            listen_host=env.get("LISTEN_HOST", "0.0.0.0"),
            port=int(number(env, "PORT", 8000, 0, 65535)),
            db_host=env.get("DB_HOST", "db"),
            db_port=int(number(env, "DB_PORT", 5432, 1, 65535)),
            db_name=env.get("DB_NAME", "demo"),
            db_user=env.get("DB_USER", "demo"),
            db_password=password,
            db_pool_size=int(number(env, "DB_POOL_SIZE", 8, 1, 1000)),
            db_connect_timeout_s=int(number(env, "DB_CONNECT_TIMEOUT_S", 3, 1, 600)),
            db_statement_timeout_ms=int(number(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 0, 3_600_000)),
            health_db_check=flag(env, "HEALTH_DB_CHECK", True),
            health_cache_s=number(env, "HEALTH_CACHE_S", 1.0, 0, 3600),
            shutdown_grace_s=number(env, "SHUTDOWN_GRACE_S", 10.0, 0, 3600),
            access_log=flag(env, "ACCESS_LOG"),
            faults=Faults(
                fail_rate=number(env, "FAIL_RATE", 0.0, 0.0, 1.0),
                extra_latency_ms=number(env, "EXTRA_LATENCY_MS", 0.0, 0.0, 600_000),
                unhealthy=flag(env, "UNHEALTHY"),
                cpu_burn_ms=number(env, "CPU_BURN_MS", 0.0, 0.0, 60_000),
                log_tracebacks=whole(env, "LOG_TRACEBACKS", 0, 0, 1_000_000),
                crash_after_s=number(env, "CRASH_AFTER_S", 0.0, 0.0, 31_536_000),
            ),
        )
