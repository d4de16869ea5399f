"""Exact per-region aggregates of each cache generation: for every region and product, how
many of the region's active customers got the product in their cached list, and its mean
score among them (docs/concepts.md, The cache).

Each infer shard adds its partial counts to `region_aggregate_shards` and its active
customers per region to `cache_shards.region_customers`; the flip that makes a generation
current merges them into that generation's partition of `region_product_aggregates_rows`.
The view `region_product_aggregates` shows the current generation's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE cache_shards ADD COLUMN region_customers JSONB NOT NULL DEFAULT '{}'::jsonb",
    """
    CREATE TABLE region_aggregate_shards (
        generation BIGINT NOT NULL REFERENCES cache_generations ON DELETE CASCADE,
        shard      INTEGER NOT NULL,
        region     VARCHAR(64) NOT NULL,
        product_id VARCHAR(255) NOT NULL,
        customers  INTEGER NOT NULL,
        score_sum  DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX region_aggregate_shards_generation_idx ON region_aggregate_shards (generation)",
    """
    CREATE TABLE region_product_aggregates_rows (
        generation       BIGINT NOT NULL DEFAULT current_cache_generation(),
        region           VARCHAR(64) NOT NULL,
        product_id       VARCHAR(255) NOT NULL,
        customers        INTEGER NOT NULL,
        active_customers INTEGER NOT NULL,
        share            DOUBLE PRECISION NOT NULL,
        mean_score       DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (generation, region, product_id)
    ) PARTITION BY LIST (generation)
    """,
    "CREATE INDEX region_product_aggregates_rank_idx"
    " ON region_product_aggregates_rows (generation, region, customers DESC)",
    # Generations that still have rows get their (empty) partition, so every flip finds one.
    """
    DO $$
    DECLARE g BIGINT;
    BEGIN
        FOR g IN SELECT generation FROM cache_generations WHERE dropped_at IS NULL LOOP
            EXECUTE format('CREATE TABLE region_product_aggregates_g%s PARTITION OF'
                           ' region_product_aggregates_rows FOR VALUES IN (%s)', g, g);
        END LOOP;
    END $$
    """,
    """
    CREATE VIEW region_product_aggregates AS
    SELECT region, product_id, customers, active_customers, share, mean_score
    FROM region_product_aggregates_rows WHERE generation = current_cache_generation()
    """,
]

DOWNGRADE = [
    "DROP VIEW region_product_aggregates",
    "DROP TABLE region_product_aggregates_rows",
    "DROP TABLE region_aggregate_shards",
    "ALTER TABLE cache_shards DROP COLUMN region_customers",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
