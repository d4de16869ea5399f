"""Model promotion: why a version is (or is not) active, and when it was promoted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE model_versions ADD COLUMN decision TEXT")
    op.execute("ALTER TABLE model_versions ADD COLUMN promoted_at TIMESTAMPTZ")
    op.execute("UPDATE model_versions SET promoted_at = trained_at WHERE active")


def downgrade() -> None:
    op.execute("ALTER TABLE model_versions DROP COLUMN promoted_at")
    op.execute("ALTER TABLE model_versions DROP COLUMN decision")
