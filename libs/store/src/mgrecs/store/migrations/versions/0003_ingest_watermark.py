"""Ingest watermarks: how far the pull connector has synced each upstream source.

The position is (updated_at, order_id) of the last record whose page the broker acknowledged;
`order_id` is compared bytewise (COLLATE "C"), as the connector and most APIs order ids.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ingest_watermarks (
            source TEXT PRIMARY KEY,
            updated_at TIMESTAMPTZ NOT NULL,
            order_id TEXT COLLATE "C" NOT NULL,
            synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ingest_watermarks")
