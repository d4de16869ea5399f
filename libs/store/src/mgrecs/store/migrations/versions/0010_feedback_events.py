"""Feedback events: what customers did with recommended products (docs/concepts.md,
Feedback and experiments).

One row per event, keyed by its event id, so a replayed message is written once. No foreign
keys to customers or products: feedback may arrive before the order data that names them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE feedback_events (
        event_id      VARCHAR(255) PRIMARY KEY,
        customer_id   VARCHAR(255) NOT NULL,
        product_id    VARCHAR(255) NOT NULL,
        kind          VARCHAR(16) NOT NULL
                      CHECK (kind IN ('impression', 'click', 'add_to_cart', 'purchase')),
        occurred_at   TIMESTAMPTZ NOT NULL,
        model_version VARCHAR(255),
        source        VARCHAR(16),
        experiment_id VARCHAR(255),
        arm           VARCHAR(255),
        revenue       NUMERIC(12, 2) CHECK (revenue >= 0),
        received_at   TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX feedback_events_arm_idx ON feedback_events (experiment_id, arm, kind)"
    " WHERE experiment_id IS NOT NULL",
    "CREATE INDEX feedback_events_version_idx ON feedback_events (model_version, kind)",
]

DOWNGRADE = ["DROP TABLE feedback_events"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
