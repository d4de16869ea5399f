"""The SQL the API still runs itself (reads of customers, orders and products are
`mgrecs.store`'s), in one place so it can be read and indexed as a whole."""

# The current generation: what the cache serves, however old (past the TTL, answers say
# `stale`: docs/concepts.md, The cache), with its age in seconds.
CURRENT = """(
    SELECT generation, model_version, completed_at,
           extract(epoch FROM now() - completed_at)::float8 AS age_seconds
    FROM cache_generations WHERE state = 'current'
)"""

CACHE_MODEL_VERSION = "SELECT model_version FROM cache_generations WHERE state = 'current'"

# With the generation's model version and age, and whether an order of the customer reached
# the database, or was corrected or cancelled, after the row was written (the list does not
# know it).
USER_CACHE = f"""
SELECT r.recommendations, r.updated_at, g.model_version, g.age_seconds,
       EXISTS (
           SELECT 1 FROM orders o
           WHERE o.customer_id = $1
             AND GREATEST(o.ingested_at, o.revised_at) > r.updated_at AT TIME ZONE 'UTC'
       ) AS outdated
FROM offline_user_recommendations r CROSS JOIN {CURRENT} g
WHERE r.user_id = $1
"""

# The version the engine serves in real time (the active one).
ACTIVE_MODEL_VERSION = """
SELECT version FROM model_versions WHERE active ORDER BY promoted_at DESC NULLS LAST LIMIT 1
"""

# The customer's ($1) purchases of each product still on sale: in how many distinct orders,
# and when last; with the repurchase statistics and parameters the active model version
# stored (all NULL when it stored none: the defaults serve). Cancelled and returned lines
# are not in order_items (the tracker removes them), as for every other reader.
BUY_AGAIN_HISTORY = f"""
WITH params AS (
    SELECT p.model_version, p.params, p.default_repeat_rate, p.default_interval_days
    FROM repurchase_params p
    WHERE p.model_version = ({ACTIVE_MODEL_VERSION.strip()})
),
bought AS (
    SELECT oi.product_id, count(DISTINCT o.order_id) AS orders, max(o.ordered_at) AS last_at
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.customer_id = $1
    GROUP BY oi.product_id
)
SELECT b.product_id, b.orders, b.last_at, s.repeat_rate, s.interval_days,
       p.model_version, p.params, p.default_repeat_rate, p.default_interval_days
FROM bought b
JOIN products pr ON pr.product_id = b.product_id AND pr.active
LEFT JOIN params p ON TRUE
LEFT JOIN repurchase_stats s
       ON s.model_version = p.model_version AND s.product_id = b.product_id
"""

SIMILAR_CACHE = f"""
SELECT s.similar_products, s.updated_at, g.age_seconds
FROM offline_similar_items s CROSS JOIN {CURRENT} g
WHERE s.product_id = $1
"""

# Per product: how many of the sampled users ($1) have it in their cached list, and its
# mean score among them, of the categories $3 (any when NULL). A malformed (non-array)
# cache row counts as an empty list.
REGION_AGGREGATE = """
WITH got AS (
    SELECT r.user_id, e ->> 'product_id' AS product_id, (e ->> 'score')::float8 AS score
    FROM offline_user_recommendations r
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(r.recommendations) = 'array'
             THEN r.recommendations ELSE '[]'::jsonb END
    ) AS e
    WHERE r.user_id = ANY($1::text[])
)
SELECT g.product_id, p.name AS product_name, p.category,
       count(DISTINCT g.user_id) AS users, avg(g.score) AS mean_score
FROM got g
LEFT JOIN products p ON p.product_id = g.product_id
WHERE $3::text[] IS NULL OR p.category = ANY($3::text[])
GROUP BY g.product_id, p.name, p.category
ORDER BY users DESC, mean_score DESC, g.product_id
LIMIT $2
"""

# The current generation with its age, and the region's ($1) active customers in it, as
# its infer shards counted them.
REGION_GENERATION = f"""
SELECT g.generation, g.completed_at, g.age_seconds,
       (SELECT coalesce(sum((s.region_customers ->> $1)::int), 0)
        FROM cache_shards s WHERE s.generation = g.generation) AS population
FROM {CURRENT} g
"""

# The batch's full-population counts of one region ($1) in generation $4 (the one
# REGION_GENERATION found, so both describe the same generation), best first, of the
# categories $3 (any when NULL).
REGION_EXACT = """
SELECT a.product_id, p.name AS product_name, p.category, a.customers AS users, a.mean_score
FROM region_product_aggregates_rows a
LEFT JOIN products p ON p.product_id = a.product_id
WHERE a.generation = $4 AND a.region = $1
  AND ($3::text[] IS NULL OR p.category = ANY($3::text[]))
ORDER BY a.customers DESC, a.mean_score DESC, a.product_id
LIMIT $2
"""

# Seconds since the current cache generation was completed (no row: none is current).
CACHE_AGE = """
SELECT extract(epoch FROM now() - completed_at)::float8
FROM cache_generations
WHERE state = 'current'
"""

# The status page (GET /v1/status).
CURRENT_GENERATION = """
SELECT generation, model_version, completed_at, users, products,
       extract(epoch FROM now() - completed_at)::float8 AS age_seconds
FROM cache_generations
WHERE state = 'current'
"""

MODEL_VERSIONS = """
SELECT version, recipe, trained_at, active, promoted_at, decision, metrics
FROM model_versions
ORDER BY trained_at DESC, version DESC
LIMIT $1
"""

LATEST_DRIFT = """
SELECT id, checked_at, model_version, drifted, report -> 'flags' AS flags
FROM drift_reports
ORDER BY id DESC
LIMIT 1
"""

RECENT_JOBS = """
SELECT tick_id, kind, started_at, finished_at, steps
FROM processed_ticks
ORDER BY started_at DESC
LIMIT $1
"""
