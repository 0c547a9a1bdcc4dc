"""0001 expand: the items table that v1 reads and writes (migrations/0001_create_items/expand.sql)."""

from alembic import op

revision = "e0001"
down_revision = None
branch_labels = ("expand",)
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now())"
    )


def downgrade() -> None:
    raise NotImplementedError("expand/contract goes forward: a rollback moves traffic, never the schema")
