"""Business rules as data (`rules`): filters, boosts and buries, pins and promotions that
every served list obeys, managed through `/v1/admin/rules` and `mgrecs rules`.

A rule has a kind, an optional region scope, an optional date window, what it targets (a
JSON object: products, categories, a price range, out of stock, inactive, attributes) and
its kind's parameter (a boost factor, a pin's slot, a promotion's share). Rules are never
deleted: disabling one keeps who made and changed it, and when.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE rules (
        rule_id     BIGSERIAL PRIMARY KEY,
        kind        VARCHAR(16) NOT NULL
                    CHECK (kind IN ('filter', 'boost', 'pin', 'promotion')),
        name        VARCHAR(255) NOT NULL DEFAULT '',
        region      VARCHAR(64),
        target      JSONB NOT NULL DEFAULT '{}'::jsonb,
        factor      DOUBLE PRECISION CHECK (factor > 0),
        slot        INTEGER CHECK (slot >= 1),
        share       DOUBLE PRECISION CHECK (share > 0 AND share <= 1),
        starts_at   TIMESTAMPTZ,
        ends_at     TIMESTAMPTZ,
        enabled     BOOLEAN NOT NULL DEFAULT TRUE,
        created_by  VARCHAR(255) NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_by  VARCHAR(255) NOT NULL,
        updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
    )
    """,
    "CREATE INDEX rules_enabled_idx ON rules (enabled)",
]

DOWNGRADE = ["DROP TABLE rules"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
