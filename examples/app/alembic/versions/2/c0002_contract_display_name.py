"""0002 contract: display_name becomes NOT NULL and `name` goes away, once no v1 is left
(migrations/0002_display_name/contract.sql says why in this order). Each statement commits on its own, and each
is skipped when a run interrupted after it already made it, so a re-run converges."""

from alembic import op

revision = "c0002"
down_revision = None
branch_labels = ("contract",)
depends_on = ("m0002",)

CONSTRAINT = "items_display_name_not_null"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        columns = dict(
            bind.exec_driver_sql(
                "SELECT attname, attnotnull FROM pg_attribute"
                " WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
        )
        if not columns.get("display_name"):
            has_check = bind.exec_driver_sql(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'items'::regclass AND conname = %(name)s",
                {"name": CONSTRAINT},
            ).scalar()
            if not has_check:  # 1. catalog only: new rows are checked from now on, no scan
                op.execute(f"ALTER TABLE items ADD CONSTRAINT {CONSTRAINT} CHECK (display_name IS NOT NULL) NOT VALID")
            op.execute(f"ALTER TABLE items VALIDATE CONSTRAINT {CONSTRAINT}")  # 2. a scan; reads and writes go on
            op.execute("ALTER TABLE items ALTER COLUMN display_name SET NOT NULL")  # 3. the CHECK is the proof
        op.execute(f"ALTER TABLE items DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
        op.execute("ALTER TABLE items DROP COLUMN IF EXISTS name")  # 4. catalog only


def downgrade() -> None:
    raise NotImplementedError("expand/contract goes forward: a rollback moves traffic, never the schema")
