"""The SQL the API runs, in one place so it can be read and indexed as a whole."""

# The cache serves while its generation is younger than the TTL ($N seconds; 0 never
# expires): past it, the rows count as missing (README, The cache).
FRESH = """EXISTS (
    SELECT 1 FROM cache_generations
    WHERE state = 'current'
      AND ({ttl}::float8 <= 0 OR completed_at >= now() - make_interval(secs => {ttl}::float8))
)"""

USER_CACHE = f"""
SELECT recommendations, updated_at
FROM offline_user_recommendations
WHERE user_id = $1 AND {FRESH.format(ttl="$2")}
"""

SIMILAR_CACHE = f"""
SELECT similar_products, updated_at
FROM offline_similar_items
WHERE product_id = $1 AND {FRESH.format(ttl="$2")}
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

# Active customers of a region in a deterministic pseudo-random order that changes only
# with the window index ($3), so every request in one window samples the same customers.
REGION_SAMPLE = """
SELECT c.customer_id
FROM customers c
WHERE c.region = $1
  AND EXISTS (
      SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $2
  )
ORDER BY md5(c.customer_id || ':' || $1 || ':' || $3::bigint::text), c.customer_id
LIMIT $4
"""

# Per product: how many of the sampled users ($1) have it in their cached list, and its
# mean score among them. A malformed (non-array) cache row counts as an empty list.
REGION_AGGREGATE = f"""
WITH got AS (
    SELECT r.user_id, e ->> 'product_id' AS product_id, (e ->> 'score')::float8 AS score
    FROM offline_user_recommendations r
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(r.recommendations) = 'array'
             THEN r.recommendations ELSE '[]'::jsonb END
    ) AS e
    WHERE r.user_id = ANY($1::text[]) AND {FRESH.format(ttl="$3")}
)
SELECT g.product_id, p.name AS product_name, p.category,
       count(DISTINCT g.user_id) AS users, avg(g.score) AS mean_score
FROM got g
LEFT JOIN products p ON p.product_id = g.product_id
GROUP BY g.product_id, p.name, p.category
ORDER BY users DESC, mean_score DESC, g.product_id
LIMIT $2
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
