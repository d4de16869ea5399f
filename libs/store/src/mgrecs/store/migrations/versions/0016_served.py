"""What the api answered (`served`), partitioned by day, for attribution and online accuracy
(docs/concepts.md, Impact).

One row per answer: products in slot order as an array (a customer's list is one row, not 25),
read back with `unnest(product_ids) WITH ORDINALITY`. Partitions are one UTC day each, named
`served_YYYYMMDD`, created by the writer before it inserts (`mgrecs.store.served`) and dropped
whole by retention, which is cheaper than deleting rows; `served_default` catches any row
whose day has no partition yet, so a write never fails for want of one. No foreign keys:
answers name customers and products the orders may not have reached yet.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE served (
        served_id     VARCHAR(255) NOT NULL,
        served_at     TIMESTAMPTZ NOT NULL,
        endpoint      VARCHAR(16) NOT NULL,
        customer_id   VARCHAR(255),
        region        VARCHAR(64),
        product_id    VARCHAR(255),
        product_ids   VARCHAR(255)[] NOT NULL,
        source        VARCHAR(32) NOT NULL,
        model_version VARCHAR(255),
        experiment_id VARCHAR(255),
        arm           VARCHAR(255),
        rule_ids      BIGINT[] NOT NULL DEFAULT '{}',
        received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (served_id, served_at)
    ) PARTITION BY RANGE (served_at)
    """,
    "CREATE TABLE served_default PARTITION OF served DEFAULT",
    "CREATE INDEX served_customer_idx ON served (customer_id, served_at)"
    " WHERE customer_id IS NOT NULL",
    "CREATE INDEX served_version_idx ON served (model_version, served_at)",
]

DOWNGRADE = ["DROP TABLE served"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
