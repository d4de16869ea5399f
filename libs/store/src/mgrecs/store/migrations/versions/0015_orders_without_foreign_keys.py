"""Orders and their lines without foreign keys: `orders.customer_id` -> customers,
`order_items.order_id` -> orders, `order_items.product_id` -> products.

The tracker's batch writer (`mgrecs.store.orders.write_orders`) writes a batch's customers,
products, orders and lines in one transaction, parents first, so the keys held anyway; but
PostgreSQL checked each of them row by row (a locking lookup of the parent per order and per
line, row-level locks written to the heap and the WAL), half of its CPU for the tracker's
writes (bench/RESULTS.md, 2026-12-07, issue 18 item 4: tracker side). No code deletes
customers, products or orders; `insert_orders` (fixtures, backfills) still expects its
customers and products to exist. The indexes stay.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE order_items DROP CONSTRAINT order_items_order_id_fkey",
    "ALTER TABLE order_items DROP CONSTRAINT order_items_product_id_fkey",
    "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey",
]

DOWNGRADE = [
    """
    ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
        FOREIGN KEY (customer_id) REFERENCES customers (customer_id)
    """,
    """
    ALTER TABLE order_items ADD CONSTRAINT order_items_product_id_fkey
        FOREIGN KEY (product_id) REFERENCES products (product_id)
    """,
    """
    ALTER TABLE order_items ADD CONSTRAINT order_items_order_id_fkey
        FOREIGN KEY (order_id) REFERENCES orders (order_id)
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
