"""What each customer bought (`customer_products`): per customer and product, in how many
distinct orders and when last, as `orders` and `order_items` say.

The buy-again list (`mgrecs.store.repurchase.BUY_AGAIN`) reads one customer's rows, an index
range, where it aggregated their orders and lines on every request (bench/RESULTS.md,
2026-12-07 afternoon, buy-again's statement). The tracker's writer (`mgrecs.store.orders`)
keeps it exact in the transaction that writes the orders: a new order adds to its pairs, a
correction's pairs are recomputed from the two tables. Filled here from the rows already
there.
No foreign keys, as for the order tables (migration 0015).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE customer_products (
        customer_id     VARCHAR(255) NOT NULL,
        product_id      VARCHAR(255) NOT NULL,
        orders          INTEGER NOT NULL CHECK (orders > 0),
        last_ordered_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (customer_id, product_id)
    )
    """,
    """
    INSERT INTO customer_products (customer_id, product_id, orders, last_ordered_at)
    SELECT o.customer_id, oi.product_id, count(DISTINCT o.order_id), max(o.ordered_at)
    FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
    GROUP BY o.customer_id, oi.product_id
    ORDER BY o.customer_id, oi.product_id
    """,
]

DOWNGRADE = ["DROP TABLE customer_products"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
