"""Initial schema: source tables, the two cache tables of the old pipeline, model versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


UPGRADE = """
CREATE TABLE customers (
    customer_id VARCHAR(255) PRIMARY KEY,
    age         INTEGER,
    gender      VARCHAR(8),
    city        VARCHAR(255),
    region      VARCHAR(64),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customers_region_idx ON customers (region);

CREATE TABLE products (
    product_id  VARCHAR(255) PRIMARY KEY,
    name        VARCHAR(500),
    category    VARCHAR(255),
    price       NUMERIC(12, 2),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    order_id    VARCHAR(255) PRIMARY KEY,
    customer_id VARCHAR(255) NOT NULL REFERENCES customers (customer_id),
    ordered_at  TIMESTAMPTZ NOT NULL,
    region      VARCHAR(64),
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id, ordered_at);
CREATE INDEX orders_ordered_at_idx ON orders (ordered_at);

CREATE TABLE order_items (
    order_id   VARCHAR(255) NOT NULL REFERENCES orders (order_id),
    line_no    INTEGER NOT NULL,
    product_id VARCHAR(255) NOT NULL REFERENCES products (product_id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    price      NUMERIC(12, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_product_idx ON order_items (product_id);

CREATE TABLE offline_user_recommendations (
    user_id         VARCHAR(255) PRIMARY KEY,
    recommendations JSONB,
    updated_at      TIMESTAMP
);

CREATE TABLE offline_similar_items (
    product_id       VARCHAR(255) PRIMARY KEY,
    similar_products JSONB,
    updated_at       TIMESTAMP
);

CREATE TABLE model_versions (
    version       VARCHAR(64) PRIMARY KEY,
    recipe        VARCHAR(64) NOT NULL,
    artifact_uri  TEXT NOT NULL,
    trained_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    n_users       INTEGER NOT NULL,
    n_items       INTEGER NOT NULL,
    n_interactions INTEGER NOT NULL,
    metrics       JSONB NOT NULL DEFAULT '{}'::jsonb,
    active        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (recipe) WHERE active;

CREATE TABLE processed_ticks (
    tick_id      VARCHAR(64) PRIMARY KEY,
    kind         VARCHAR(32) NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb
);
"""

DOWNGRADE = """
DROP TABLE processed_ticks;
DROP TABLE model_versions;
DROP TABLE offline_similar_items;
DROP TABLE offline_user_recommendations;
DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE products;
DROP TABLE customers;
"""


def _run_statements(script: str) -> None:
    """asyncpg runs one statement per call, so a script is split on `;`."""
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run_statements(UPGRADE)


def downgrade() -> None:
    _run_statements(DOWNGRADE)
