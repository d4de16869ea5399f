"""Job steps: each tick's job records its steps (export, quality, ...) with their seconds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE processed_ticks ADD COLUMN steps JSONB NOT NULL DEFAULT '[]'::jsonb")
    op.execute("CREATE INDEX processed_ticks_started_idx ON processed_ticks (started_at DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX processed_ticks_started_idx")
    op.execute("ALTER TABLE processed_ticks DROP COLUMN steps")
