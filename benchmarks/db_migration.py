"""Adding a column, backfilling it from another and indexing it on a 1,000,000-row table under
application load, with a 20 s transaction holding a lock in the middle: naive SQL against
db_migration, in the same run; and the backfill's rows/s against a plain batched UPDATE loop.

    .venv/bin/python benchmarks/db_migration.py [--rows 1000000] [--rate 200]

The application load (old code: reads, updates and inserts on random rows, statement_timeout
2 s) records each query's latency and SQLSTATE, since pgbench cannot count failed queries.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.modules import run_module  # noqa: E402
from support.postgres import Postgres  # noqa: E402
from support.testbed import Testbed  # noqa: E402

# The same change as the naive SQL, in the same order: the column, the backfill, then the index.
EXPAND = "ALTER TABLE items ADD COLUMN display_name text;\n"
INDEX = "CREATE INDEX CONCURRENTLY items_display_name_idx ON items (display_name);\n"
BACKFILL = "table: items\nkey: id\nset: display_name = name\nwhere: display_name IS NULL\nbatch_size: 2000\n"
NAIVE = [
    "ALTER TABLE items ADD COLUMN display_name text NOT NULL DEFAULT ''",
    "UPDATE items SET display_name = name",
    "CREATE INDEX items_display_name_idx ON items (display_name)",
]


class AppLoad:
    """Old code at a constant rate: 60 % reads, 30 % updates, 10 % inserts."""

    def __init__(self, pg: Postgres, db: str, rows: int, rate: float, threads: int = 4) -> None:
        self.pg, self.db, self.rows, self.interval = pg, db, rows, threads / rate
        self.samples: list[tuple[float, float, str | None]] = []  # (start, seconds, sqlstate)
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _n in range(threads)]

    def worker(self) -> None:
        conn = self.pg.connect(self.db, application_name="bench-app-v1")
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '2s'")
        rng = random.Random()
        next_at = time.monotonic()
        while not self.stop.is_set():
            pick, key = rng.random(), rng.randint(1, self.rows)
            started = time.monotonic()
            state = None
            try:
                with conn.cursor() as cur:
                    if pick < 0.6:
                        cur.execute("SELECT name FROM items WHERE id = %s", (key,))
                        cur.fetchall()
                    elif pick < 0.9:
                        cur.execute("UPDATE items SET name = name || '' WHERE id = %s", (key,))
                    else:
                        cur.execute("INSERT INTO items (name) VALUES ('new item')")
            except psycopg2.Error as exc:
                state = exc.pgcode or "error"
            with self.lock:
                self.samples.append((started, time.monotonic() - started, state))
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        conn.close()

    def __enter__(self) -> AppLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def summary(self) -> dict:
        latencies = sorted(s[1] for s in self.samples)
        failed = [s[2] for s in self.samples if s[2]]
        return {
            "queries": len(latencies),
            "failed": len(failed),
            "failed_by_sqlstate": {code: failed.count(code) for code in sorted(set(failed))},
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        }


def make_table(pg: Postgres, rows: int) -> str:
    db = pg.create_database()
    pg.query(
        db, "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now())"
    )
    pg.query(db, "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, %s) g", (rows,))
    pg.query(db, "VACUUM ANALYZE items")
    return db


def hold_lock_later(pg: Postgres, db: str, after: float, hold: float) -> threading.Thread:
    """A reporting transaction that keeps ACCESS SHARE on items for `hold` seconds."""

    def run() -> None:
        time.sleep(after)
        conn = pg.connect(db, application_name="bench-long-report")
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT count(*) FROM items WHERE id < 10")
            time.sleep(hold)
            cur.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def naive(pg: Postgres, db: str, rows: int, rate: float) -> dict:
    with AppLoad(pg, db, rows, rate) as load:
        time.sleep(2)
        holder = hold_lock_later(pg, db, 1, 20)
        time.sleep(1.5)
        started = time.monotonic()
        conn = pg.connect(db, application_name="bench-naive-migration")
        timings = []
        with conn.cursor() as cur:
            for sql in NAIVE:
                t0 = time.monotonic()
                cur.execute(sql)
                timings.append(time.monotonic() - t0)
        conn.close()
        total = time.monotonic() - started
        holder.join()
        time.sleep(1)
    return {"total_s": round(total, 1), "backfill_rows_per_s": round(rows / timings[1]), **load.summary()}


def with_module(pg: Postgres, db: str, rows: int, rate: float, workdir: Path) -> dict:
    version = workdir / "migrations" / "0001_display_name"
    version.mkdir(parents=True)
    (version / "expand.sql").write_text(EXPAND)
    (version / "backfill.yml").write_text(BACKFILL)
    index = workdir / "migrations" / "0002_display_name_index"
    index.mkdir()
    (index / "expand.sql").write_text(INDEX)
    args = pg.module_args(
        db,
        path=str(workdir / "migrations"),
        lock_timeout="500ms",
        retry={"attempts": 30, "base_delay": 0.2, "max_delay": 2.0},
    )
    with AppLoad(pg, db, rows, rate) as load:
        time.sleep(2)
        holder = hold_lock_later(pg, db, 1, 20)
        time.sleep(1.5)
        started = time.monotonic()
        expand = run_module("db_migration", {**args, "phase": "expand", "target": 1})
        assert not expand.get("failed"), expand.get("msg")
        migrate = run_module("db_migration", {**args, "phase": "migrate"})
        assert not migrate.get("failed"), migrate.get("msg")
        indexed = run_module("db_migration", {**args, "phase": "expand"})
        assert not indexed.get("failed"), indexed.get("msg")
        total = time.monotonic() - started
        holder.join()
        time.sleep(1)
    (stats,) = migrate["backfill"]
    return {
        "total_s": round(total, 1),
        "backfill_rows_per_s": stats["rows_per_second"],
        "expand_retries": expand["applied"][0]["retries"],
        **load.summary(),
    }


def batched_loop(pg: Postgres, db: str, rows: int, batch: int = 2000) -> float:
    """The reference: UPDATE ... WHERE id BETWEEN, batch after batch, on an idle table."""
    pg.query(db, "ALTER TABLE items ADD COLUMN copy text")
    conn = pg.connect(db)
    started = time.monotonic()
    with conn.cursor() as cur:
        for low in range(1, rows + 1, batch):
            cur.execute("UPDATE items SET copy = name WHERE id BETWEEN %s AND %s", (low, low + batch - 1))
    conn.close()
    return rows / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        pg = Postgres(Testbed.load(), Path(workdir)).start()
        try:
            loop_rate = batched_loop(pg, make_table(pg, opts.rows), opts.rows)
            results = {
                "naive SQL": naive(pg, make_table(pg, opts.rows), opts.rows, opts.rate),
                "db_migration": with_module(pg, make_table(pg, opts.rows), opts.rows, opts.rate, Path(workdir)),
            }
        finally:
            pg.stop()
    print(f"plain batched UPDATE loop, idle table: {loop_rate:,.0f} rows/s")
    for name, r in results.items():
        print(
            f"{name}: {r['failed']} failed of {r['queries']} app queries {r['failed_by_sqlstate']}, "
            f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms, total {r['total_s']} s, "
            f"backfill {r['backfill_rows_per_s']:,.0f} rows/s"
            + (f", expand retries {r['expand_retries']}" if "expand_retries" in r else "")
        )
    ratio = results["db_migration"]["backfill_rows_per_s"] / loop_rate
    print(f"db_migration backfill / plain loop: {ratio:.2f}")


if __name__ == "__main__":
    main()
