"""Customer identities: which unified customer each id, e-mail and phone belongs to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE customer_identities (
            unified_customer_id TEXT PRIMARY KEY,
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            merged_into TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE customer_aliases (
            alias_kind TEXT NOT NULL CHECK (alias_kind IN ('id', 'email', 'phone')),
            alias_value TEXT NOT NULL,
            unified_customer_id TEXT NOT NULL REFERENCES customer_identities,
            PRIMARY KEY (alias_kind, alias_value)
        )
        """
    )
    op.execute("CREATE INDEX customer_aliases_unified ON customer_aliases (unified_customer_id)")


def downgrade() -> None:
    op.execute("DROP TABLE customer_aliases")
    op.execute("DROP TABLE customer_identities")
