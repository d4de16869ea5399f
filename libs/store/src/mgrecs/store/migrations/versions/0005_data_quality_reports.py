"""Data-quality reports: one per sync, backfill and export, with its verdict.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE data_quality_reports (
            id         BIGSERIAL PRIMARY KEY,
            source     TEXT NOT NULL,
            kind       TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            report     JSONB NOT NULL,
            passed     BOOLEAN NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX data_quality_reports_source_idx ON data_quality_reports (source, id DESC)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE data_quality_reports")
