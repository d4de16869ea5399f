"""The product catalogue: what the company says about a product, before and after it sells.

Products used to exist only once an order named them (name, category, price). The catalogue
(topic `products`, docs/concepts.md) adds what merchandising needs: the cost (margin is
price - cost), whether it is in stock, when it was launched (a new product reaches customers
through the "new in your categories" slot), free attributes (brand, size... as a JSON object,
also used for similar items of products nobody bought yet) and the company's `updated_at`
of the version stored, so an older update arriving late never overwrites a newer one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE products ADD COLUMN cost NUMERIC(12, 2)",
    "ALTER TABLE products ADD COLUMN in_stock BOOLEAN NOT NULL DEFAULT TRUE",
    "ALTER TABLE products ADD COLUMN launched_at TIMESTAMPTZ",
    "ALTER TABLE products ADD COLUMN attributes JSONB NOT NULL DEFAULT '{}'::jsonb",
    "ALTER TABLE products ADD COLUMN source_updated_at TIMESTAMPTZ",
    "CREATE INDEX products_category_idx ON products (category)",
    "CREATE INDEX products_launched_at_idx ON products (launched_at)",
]

DOWNGRADE = [
    "DROP INDEX products_launched_at_idx",
    "DROP INDEX products_category_idx",
    "ALTER TABLE products DROP COLUMN source_updated_at",
    "ALTER TABLE products DROP COLUMN attributes",
    "ALTER TABLE products DROP COLUMN launched_at",
    "ALTER TABLE products DROP COLUMN in_stock",
    "ALTER TABLE products DROP COLUMN cost",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
