"""0002 migrate: display_name = name for the rows v1 wrote, in batches of 1000 rows walking the primary key,
each batch committed on its own so no lock is held long (migrations/0002_display_name/backfill.yml)."""

from alembic import op

revision = "m0002"
down_revision = None
branch_labels = ("migrate",)
depends_on = ("e0002",)

BATCH = """
UPDATE items SET display_name = name
WHERE id IN (SELECT id FROM items WHERE display_name IS NULL AND id > %(after)s ORDER BY id LIMIT 1000)
RETURNING id
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        after, rows = 0, 0
        while True:
            ids = [row[0] for row in bind.exec_driver_sql(BATCH, {"after": after}).fetchall()]
            if not ids:
                break
            after, rows = max(ids), rows + len(ids)
        print(f"backfilled display_name of {rows} row(s)", flush=True)


def downgrade() -> None:
    raise NotImplementedError("expand/contract goes forward: a rollback moves traffic, never the schema")
