"""What each mode consumes (`usage_hourly`): one row per UTC hour, mode, service, metric and
campaign, added to by every service's meter (`mgrecs.common.usage`, `mgrecs.store.usage`).

A price table turns the rows into an estimated AWS bill (`mgrecs.common.prices`;
docs/cost.md). Counters add (`value + n`); peaks (`peak_tps`, `peak_tps_5min`) keep the
greatest.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE usage_hourly (
        hour     TIMESTAMPTZ NOT NULL,
        mode     VARCHAR(16) NOT NULL,
        service  VARCHAR(32) NOT NULL,
        metric   VARCHAR(64) NOT NULL,
        campaign TEXT NOT NULL DEFAULT '',
        value    DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (hour, mode, service, metric, campaign)
    )
    """,
]

DOWNGRADE = ["DROP TABLE usage_hourly"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
