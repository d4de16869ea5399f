"""Drift reports: after each batch job, how recent purchases compare with the active model's.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE drift_reports (
            id            BIGSERIAL PRIMARY KEY,
            checked_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
            model_version VARCHAR(64) NOT NULL,
            drifted       BOOLEAN NOT NULL,
            report        JSONB NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX drift_reports_checked_idx ON drift_reports (checked_at DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE drift_reports")
