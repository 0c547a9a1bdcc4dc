"""What each version of the demo app asks of the ``items`` table (pure functions, no I/O).

The HTTP API is the same in every version -- an item is ``{"id", "name", "created_at"}`` -- and
only the SQL behind it changes, which is what expand -> migrate -> contract is about:

- v1: column ``name`` only (migration 0001).
- v2: after the expand of 0002 added ``display_name``: writes both columns, so that v1 keeps
  working next to it, and reads ``display_name`` with a fallback to ``name`` for rows that v1
  wrote and the backfill has not reached yet. When the 0002 contract has dropped ``name`` while
  v2 is still live, v2 notices (undefined column, or the schema check of /health) and switches to
  the ``display_name``-only statements, so the contract does not break the live color.
- v3: ``display_name`` only; needs the 0002 contract (``name`` dropped, or at least nullable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

GENERATIONS = (1, 2, 3)

# Columns of the items table and whether each is NOT NULL: the input of schema_problem().
COLUMNS_SQL = (
    "SELECT attname, attnotnull FROM pg_attribute"
    " WHERE attrelid = to_regclass('items') AND attnum > 0 AND NOT attisdropped"
)


def generation(version: str) -> int:
    """The schema generation of an image version: ``v2``, ``2``, ``v2.1.0``, ``2-rc1`` -> 2."""
    match = re.match(r"v?(\d+)", version.strip())
    if not match or int(match.group(1)) not in GENERATIONS:
        raise ValueError(f"APP_VERSION={version!r}: expected v1, v2 or v3 (optionally with a suffix, e.g. v2.1)")
    return int(match.group(1))


@dataclass(frozen=True)
class ItemSQL:
    """The statements of one version. Both return rows of (id, name, created_at)."""

    select: str  # parameter: %(limit)s
    insert: str  # parameter: %(name)s


def item_sql(gen: int, has_name_column: bool = True) -> ItemSQL:
    """The SQL for generation ``gen``; ``has_name_column`` is False once the 0002 contract ran."""
    if gen == 1:
        return ItemSQL(
            select="SELECT id, name, created_at FROM items ORDER BY id DESC LIMIT %(limit)s",
            insert="INSERT INTO items (name) VALUES (%(name)s) RETURNING id, name, created_at",
        )
    if gen == 2 and has_name_column:
        return ItemSQL(
            select="SELECT id, COALESCE(display_name, name), created_at FROM items ORDER BY id DESC LIMIT %(limit)s",
            insert=(
                "INSERT INTO items (name, display_name) VALUES (%(name)s, %(name)s)"
                " RETURNING id, display_name, created_at"
            ),
        )
    if gen in (2, 3):
        return ItemSQL(
            select="SELECT id, display_name, created_at FROM items ORDER BY id DESC LIMIT %(limit)s",
            insert="INSERT INTO items (display_name) VALUES (%(name)s) RETURNING id, display_name, created_at",
        )
    raise ValueError(f"unknown schema generation {gen}")


def schema_problem(gen: int, columns: Mapping[str, bool]) -> str | None:
    """Why this version cannot work with the table described by ``columns`` (name -> NOT NULL), or None.

    This is what /health reports, so a color whose migrations have not run (or whose columns a
    contract removed) is unhealthy instead of answering 500 to every write.
    """
    if not columns:
        return "table items not found: run migration 0001 (expand)"
    if gen == 1:
        if "name" not in columns:
            return "column items.name is gone (0002 contract ran): v1 is incompatible with this schema"
        if columns.get("display_name"):
            return "items.display_name is NOT NULL (0002 contract ran): v1 cannot insert"
        return None
    if "display_name" not in columns:
        return "column items.display_name missing: run the expand of migration 0002 first"
    if gen == 3 and columns.get("name"):
        return "items.name is still NOT NULL: v3 needs the 0002 contract first"
    return None
