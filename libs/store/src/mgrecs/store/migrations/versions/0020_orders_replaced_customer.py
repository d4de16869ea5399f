"""The customer an order had before its last revision (`orders.replaced_customer_id`).

The tracker's writer takes the replaced version's customer out of `customer_products`. It
read that customer with a subquery, which sees the table as the statement started: when two
versions of one order are written at once (two tracker replicas during a rebalance), the
later waits on the earlier's row and then replaces a version its subquery never saw, so the
earlier version's customer kept the purchase. The upsert's own `SET` sees the row it locked,
so it now records that version's customer here and returns it. NULL while the first version
stands; adding the column rewrites no row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN replaced_customer_id VARCHAR(255)")


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN replaced_customer_id")
