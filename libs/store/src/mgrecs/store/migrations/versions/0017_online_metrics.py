"""Online accuracy of the served model versions (`online_metrics`): one row per version and
UTC day, beside the offline metrics of `model_versions.metrics`.

Precision, recall and NDCG@10 of the lists a version served (`served`, endpoint `user`)
against what those customers bought afterwards, measured by the batch after each cache fill
and replaced through the day (`mgrecs.batch.online`; docs/concepts.md, Impact).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE online_metrics (
        model_version VARCHAR(64) NOT NULL,
        day           DATE NOT NULL,
        customers     INTEGER NOT NULL,
        "precision@10" DOUBLE PRECISION,
        "recall@10"    DOUBLE PRECISION,
        "ndcg@10"      DOUBLE PRECISION,
        measured_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (model_version, day)
    )
    """,
]

DOWNGRADE = ["DROP TABLE online_metrics"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
