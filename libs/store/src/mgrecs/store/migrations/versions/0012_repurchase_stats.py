"""Buy again: per model version, the repurchase parameters and each product's repeat rate and
interval, so the api scores a customer's history as the retrain measured it.

`repurchase_params` holds the `BuyAgainParams` chosen for a model version (`params`, JSONB:
a new knob needs no migration) and the values assumed for a product the version never saw
(bought after it was trained); `repurchase_stats` one row per product of that version. Both
go with their model version (ON DELETE CASCADE); the batch keeps only the recent versions'.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE repurchase_params (
        model_version VARCHAR(64) PRIMARY KEY
            REFERENCES model_versions (version) ON DELETE CASCADE,
        params JSONB NOT NULL,
        default_repeat_rate DOUBLE PRECISION NOT NULL,
        default_interval_days DOUBLE PRECISION NOT NULL,
        products INTEGER NOT NULL,
        fitted_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE repurchase_stats (
        model_version VARCHAR(64) NOT NULL
            REFERENCES repurchase_params (model_version) ON DELETE CASCADE,
        product_id VARCHAR(255) NOT NULL,
        repeat_rate DOUBLE PRECISION NOT NULL,
        interval_days DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model_version, product_id)
    )
    """,
]

DOWNGRADE = ["DROP TABLE repurchase_stats", "DROP TABLE repurchase_params"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
