"""Cache generations: the two cache tables become views over the current generation.

Rows live in `offline_user_recommendations_rows` and `offline_similar_items_rows`, LIST
partitioned by generation (one partition per generation, so dropping an old one is cheap).
`cache_generations` says which generation is current; the legacy names are views of it, so
the old readers keep their shape. The existing rows become generation 1, current.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE cache_generations (
        generation       BIGSERIAL PRIMARY KEY,
        tick_id          VARCHAR(64),
        model_version    VARCHAR(64),
        artifact_uri     TEXT,
        shards           INTEGER NOT NULL CHECK (shards > 0),
        shards_done      INTEGER NOT NULL DEFAULT 0,
        state            VARCHAR(16) NOT NULL DEFAULT 'building'
                         CHECK (state IN ('building', 'current', 'failed', 'retired')),
        active_since     TIMESTAMPTZ,
        users            INTEGER NOT NULL DEFAULT 0,
        users_unknown    INTEGER NOT NULL DEFAULT 0,
        products         INTEGER NOT NULL DEFAULT 0,
        users_dropped    INTEGER NOT NULL DEFAULT 0,
        products_dropped INTEGER NOT NULL DEFAULT 0,
        error            TEXT,
        created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        completed_at     TIMESTAMPTZ,
        dropped_at       TIMESTAMPTZ
    )
    """,
    "CREATE UNIQUE INDEX cache_generations_one_current ON cache_generations ((true))"
    " WHERE state = 'current'",
    "CREATE INDEX cache_generations_tick_idx ON cache_generations (tick_id)",
    """
    CREATE TABLE cache_shards (
        generation    BIGINT NOT NULL REFERENCES cache_generations ON DELETE CASCADE,
        shard         INTEGER NOT NULL,
        worker        TEXT NOT NULL,
        users         INTEGER NOT NULL,
        users_unknown INTEGER NOT NULL,
        products      INTEGER NOT NULL,
        seconds       DOUBLE PRECISION NOT NULL,
        done_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (generation, shard)
    )
    """,
    """
    CREATE FUNCTION current_cache_generation() RETURNS BIGINT LANGUAGE sql STABLE
    AS $$ SELECT generation FROM cache_generations WHERE state = 'current' $$
    """,
    """
    CREATE TABLE offline_user_recommendations_rows (
        generation      BIGINT NOT NULL DEFAULT current_cache_generation(),
        user_id         VARCHAR(255) NOT NULL,
        recommendations JSONB,
        updated_at      TIMESTAMP,
        PRIMARY KEY (generation, user_id)
    ) PARTITION BY LIST (generation)
    """,
    """
    CREATE TABLE offline_similar_items_rows (
        generation       BIGINT NOT NULL DEFAULT current_cache_generation(),
        product_id       VARCHAR(255) NOT NULL,
        similar_products JSONB,
        updated_at       TIMESTAMP,
        PRIMARY KEY (generation, product_id)
    ) PARTITION BY LIST (generation)
    """,
    "INSERT INTO cache_generations (generation, shards, shards_done, state, completed_at,"
    " users, products) SELECT 1, 1, 1, 'current', now(),"
    " (SELECT count(*) FROM offline_user_recommendations),"
    " (SELECT count(*) FROM offline_similar_items)",
    "SELECT setval('cache_generations_generation_seq', 1)",
    "CREATE TABLE offline_user_recommendations_g1 PARTITION OF offline_user_recommendations_rows"
    " FOR VALUES IN (1)",
    "CREATE TABLE offline_similar_items_g1 PARTITION OF offline_similar_items_rows"
    " FOR VALUES IN (1)",
    "INSERT INTO offline_user_recommendations_rows"
    " SELECT 1, user_id, recommendations, updated_at FROM offline_user_recommendations",
    "INSERT INTO offline_similar_items_rows"
    " SELECT 1, product_id, similar_products, updated_at FROM offline_similar_items",
    "DROP TABLE offline_user_recommendations",
    "DROP TABLE offline_similar_items",
    """
    CREATE VIEW offline_user_recommendations AS
    SELECT user_id, recommendations, updated_at FROM offline_user_recommendations_rows
    WHERE generation = current_cache_generation()
    """,
    """
    CREATE VIEW offline_similar_items AS
    SELECT product_id, similar_products, updated_at FROM offline_similar_items_rows
    WHERE generation = current_cache_generation()
    """,
]

DOWNGRADE = [
    "CREATE TABLE offline_user_recommendations_old (user_id VARCHAR(255) PRIMARY KEY,"
    " recommendations JSONB, updated_at TIMESTAMP)",
    "CREATE TABLE offline_similar_items_old (product_id VARCHAR(255) PRIMARY KEY,"
    " similar_products JSONB, updated_at TIMESTAMP)",
    "INSERT INTO offline_user_recommendations_old SELECT * FROM offline_user_recommendations",
    "INSERT INTO offline_similar_items_old SELECT * FROM offline_similar_items",
    "DROP VIEW offline_user_recommendations",
    "DROP VIEW offline_similar_items",
    "DROP TABLE offline_user_recommendations_rows",
    "DROP TABLE offline_similar_items_rows",
    "DROP FUNCTION current_cache_generation()",
    "DROP TABLE cache_shards",
    "DROP TABLE cache_generations",
    "ALTER TABLE offline_user_recommendations_old RENAME TO offline_user_recommendations",
    "ALTER TABLE offline_similar_items_old RENAME TO offline_similar_items",
    "ALTER INDEX offline_user_recommendations_old_pkey RENAME TO offline_user_recommendations_pkey",
    "ALTER INDEX offline_similar_items_old_pkey RENAME TO offline_similar_items_pkey",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
