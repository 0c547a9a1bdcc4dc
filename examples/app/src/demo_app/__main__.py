"""``python3 -m demo_app``: serve until SIGTERM or SIGINT, then drain and exit 0.

Exit status 2: a setting is wrong (the message says which); 3: CRASH_ON_START=1, 4: CRASH_AFTER_S reached
(fault injection; under ``restart: unless-stopped`` Docker starts the container again).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from .app import App
from .config import Config, ConfigError, flag
from .db import PgStore
from .server import DemoServer


def main() -> int:
    try:
        if flag(os.environ, "CRASH_ON_START"):
            print("demo-app: CRASH_ON_START=1, exiting with status 3 (fault injection)", file=sys.stderr, flush=True)
            return 3
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print(f"demo-app: configuration error: {exc}", file=sys.stderr, flush=True)
        return 2

    store = PgStore(config)  # connects lazily: a database that is not up yet only makes /health red
    server = DemoServer((config.listen_host, config.port), App(config, store), access_log=config.access_log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    # serve_forever() looks at its shutdown flag between polls: 50 ms rather than the default 0.5 s, so that a stop
    # (drain) is not held up to half a second before the listening socket closes.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="accept", daemon=True).start()
    print(
        f"demo-app {config.version} (schema generation {config.generation}), color {config.color},"
        f" listening on {config.listen_host}:{server.server_port};"
        f" database {config.db_user}@{config.db_host}:{config.db_port}/{config.db_name}"
        f" as application_name={config.application_name}",
        flush=True,
    )

    crash_after = config.faults.crash_after_s or None
    if not stop.wait(crash_after) and crash_after:
        print(
            f"demo-app: CRASH_AFTER_S={crash_after:g} reached, exiting with status 4 (fault injection)",
            file=sys.stderr,
            flush=True,
        )
        server.drain(1.0)  # the requests in flight are answered; the crash is the exit
        server.server_close()
        store.close()
        return 4
    print(f"demo-app: stopping, draining connections (at most {config.shutdown_grace_s:g} s)", flush=True)
    left = server.drain(config.shutdown_grace_s)
    server.server_close()
    store.close()
    cut = f", {left} connection(s) cut at the end of the grace period" if left else ""
    print(f"demo-app: stopped{cut}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
