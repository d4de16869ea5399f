"""The SQL the API runs, in one place so it can be read and indexed as a whole."""

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

# Distinct buyers since $1 of each of these products ($2); products nobody bought are absent.
BUYERS_OF = """
SELECT oi.product_id, count(DISTINCT o.customer_id) AS buyers
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
WHERE o.ordered_at >= $1 AND oi.product_id = ANY($2::text[])
GROUP BY oi.product_id
"""
