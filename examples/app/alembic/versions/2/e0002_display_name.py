"""0002 expand: display_name next to name, nullable and without a default - a catalog change only, and v1,
which knows only `name`, keeps inserting (migrations/0002_display_name/expand.sql)."""

from alembic import op

revision = "e0002"
down_revision = "e0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN display_name text")


def downgrade() -> None:
    raise NotImplementedError("expand/contract goes forward: a rollback moves traffic, never the schema")
