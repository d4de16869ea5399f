"""The SQL the API runs, in one place so it can be read and indexed as a whole."""

# The current generation: what the cache serves, however old (past the TTL, answers say
# `stale`: README, The cache), with its age in seconds.
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

SIMILAR_CACHE = f"""
SELECT s.similar_products, s.updated_at, g.age_seconds
FROM offline_similar_items s CROSS JOIN {CURRENT} g
WHERE s.product_id = $1
"""

CUSTOMER = """
SELECT customer_id, region
FROM customers
WHERE customer_id = $1
"""

PRODUCT_EXISTS = "SELECT EXISTS (SELECT 1 FROM products WHERE product_id = $1)"

# Which of these products ($1) are in one of these categories ($2).
IN_CATEGORIES = """
SELECT product_id FROM products
WHERE product_id = ANY($1::text[]) AND category = ANY($2::text[])
"""

REGION_EXISTS = "SELECT EXISTS (SELECT 1 FROM customers WHERE region = $1)"

# Distinct recent buyers per product, in one region ($2) or everywhere ($2 NULL), of the
# categories $4 (any when NULL).
POPULAR = """
SELECT oi.product_id, count(DISTINCT o.customer_id) AS buyers
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
JOIN customers c ON c.customer_id = o.customer_id
WHERE o.ordered_at >= $1 AND ($2::text IS NULL OR c.region = $2)
  AND ($4::text[] IS NULL OR oi.product_id IN (
      SELECT product_id FROM products WHERE category = ANY($4::text[])
  ))
GROUP BY oi.product_id
ORDER BY buyers DESC, oi.product_id
LIMIT $3
"""

# The region page without cached lists (README, The cache): the products with the most
# distinct buyers since $2 among the region's ($1) customers, of the categories $4 (any when
# NULL), as region page lines (`users`: buyers; `mean_score`: buyers relative to the top),
# with the region's active customers (`population`, the rates' denominator).
REGION_POPULAR = """
SELECT oi.product_id, p.name AS product_name, p.category,
       (SELECT count(DISTINCT a.customer_id) FROM orders a
        JOIN customers ac ON ac.customer_id = a.customer_id
        WHERE ac.region = $1 AND a.ordered_at >= $2) AS population,
       count(DISTINCT o.customer_id) AS users,
       count(DISTINCT o.customer_id)::float8
           / max(count(DISTINCT o.customer_id)) OVER () AS mean_score
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN products p ON p.product_id = oi.product_id
WHERE c.region = $1 AND o.ordered_at >= $2
  AND ($4::text[] IS NULL OR p.category = ANY($4::text[]))
GROUP BY oi.product_id, p.name, p.category
ORDER BY users DESC, oi.product_id
LIMIT $3
"""

# Active customers of a region in a deterministic pseudo-random order that changes only
# with the window index ($3), so every request in one window samples the same customers;
# `population` counts them all (the window is over the rows before LIMIT).
REGION_SAMPLE = """
SELECT c.customer_id, count(*) OVER () AS population
FROM customers c
WHERE c.region = $1
  AND EXISTS (
      SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $2
  )
ORDER BY md5(c.customer_id || ':' || $1 || ':' || $3::bigint::text), c.customer_id
LIMIT $4
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

# Every region with customers: how many, and how many bought since $1.
REGIONS = """
SELECT c.region, count(*) AS customers, count(a.customer_id) AS active_customers
FROM customers c
LEFT JOIN (SELECT DISTINCT customer_id FROM orders WHERE ordered_at >= $1) a
       ON a.customer_id = c.customer_id
WHERE c.region IS NOT NULL
GROUP BY c.region
ORDER BY c.region
"""

# Seconds since the current cache generation was completed (no row: none is current).
CACHE_AGE = """
SELECT extract(epoch FROM now() - completed_at)::float8
FROM cache_generations
WHERE state = 'current'
"""

# Distinct buyers since $1 of each of these products ($2); products nobody bought are absent.
BUYERS_OF = """
SELECT oi.product_id, count(DISTINCT o.customer_id) AS buyers
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
WHERE o.ordered_at >= $1 AND oi.product_id = ANY($2::text[])
GROUP BY oi.product_id
"""

# The status page (GET /v1/status).
CURRENT_GENERATION = """
SELECT generation, model_version, completed_at, users, products,
       extract(epoch FROM now() - completed_at)::float8 AS age_seconds
FROM cache_generations
WHERE state = 'current'
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
