"""Order versions: an order's status and the upstream time of the version stored.

`updated_at` and `content_hash` say which version of an order is stored (the newest wins,
see `mgrecs.common.schemas.OrderVersion`); `updated_at` NULL means `ordered_at` (rows written
before, or by hand), so adding the column rewrites no row. `revised_at` is when a newer version
last replaced the stored one (NULL while the first version stands). `order_items` holds the
lines that count (none for a cancelled or returned order). Existing orders stay placed, with an
empty hash: any message about them is the same version or a newer one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    ALTER TABLE orders
        ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'placed'
            CHECK (status IN ('placed', 'cancelled', 'returned')),
        ADD COLUMN updated_at TIMESTAMPTZ,
        ADD COLUMN content_hash VARCHAR(64) COLLATE "C" NOT NULL DEFAULT '',
        ADD COLUMN revised_at TIMESTAMPTZ
    """,
    "CREATE INDEX orders_revised_at_idx ON orders (revised_at) WHERE revised_at IS NOT NULL",
]

DOWNGRADE = [
    "DROP INDEX orders_revised_at_idx",
    """
    ALTER TABLE orders
        DROP COLUMN revised_at, DROP COLUMN content_hash, DROP COLUMN updated_at,
        DROP COLUMN status
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
