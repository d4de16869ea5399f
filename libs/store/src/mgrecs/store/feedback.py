"""Feedback events (`feedback_events`): what customers did with recommended products, and
the experiments' per-arm totals over them.

Writes are idempotent: one row per event id, a replay changes nothing."""

from collections.abc import Sequence

import asyncpg

from mgrecs.common.feedback import FeedbackEvent

INSERT_FEEDBACK = """
INSERT INTO feedback_events (event_id, customer_id, product_id, kind, occurred_at,
                             model_version, source, experiment_id, arm, revenue)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::numeric[])
ON CONFLICT (event_id) DO NOTHING
"""
"""One statement per batch (columns as arrays); an id seen before, in this batch or an
earlier one, is skipped."""


async def write_feedback(pool: asyncpg.Pool, events: Sequence[FeedbackEvent]) -> None:
    """Insert the events not stored yet."""
    columns: list[list[object]] = [[] for _ in range(10)]
    for event in events:
        row = (
            event.event_id,
            event.customer_id,
            event.product_id,
            event.kind,
            event.occurred_at,
            event.model_version,
            event.source,
            event.experiment_id,
            event.arm,
            event.revenue,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await pool.execute(INSERT_FEEDBACK, *columns)


ARM_TOTALS = """
SELECT arm,
       count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE kind = 'impression') AS impressions,
       count(*) FILTER (WHERE kind = 'click') AS clicks,
       count(*) FILTER (WHERE kind = 'add_to_cart') AS add_to_carts,
       count(*) FILTER (WHERE kind = 'purchase') AS purchases,
       coalesce(sum(revenue) FILTER (WHERE kind = 'purchase'), 0)::float8 AS revenue,
       coalesce(sum(revenue * revenue) FILTER (WHERE kind = 'purchase'), 0)::float8
           AS revenue_squares
FROM feedback_events
WHERE experiment_id = $1
GROUP BY arm
"""


async def arm_totals(pool: asyncpg.Pool, experiment_id: str) -> list[asyncpg.Record]:
    """Per arm of the experiment with feedback: (arm, customers, impressions, clicks,
    add_to_carts, purchases, revenue, revenue_squares)."""
    rows: list[asyncpg.Record] = await pool.fetch(ARM_TOTALS, experiment_id)
    return rows


ARM_SOURCES = """
SELECT arm, coalesce(source, 'unknown') AS source, count(*) AS impressions
FROM feedback_events
WHERE experiment_id = $1 AND kind = 'impression'
GROUP BY arm, coalesce(source, 'unknown')
"""


async def arm_sources(pool: asyncpg.Pool, experiment_id: str) -> dict[str, dict[str, int]]:
    """Per arm, its impressions by the source that served them ("unknown" when the event did
    not say): whether the arms were served the same way."""
    found: dict[str, dict[str, int]] = {}
    for row in await pool.fetch(ARM_SOURCES, experiment_id):
        found.setdefault(row["arm"], {})[row["source"]] = row["impressions"]
    return found


CUSTOMER_REVENUES = """
SELECT arm, array_agg(revenue) AS revenues
FROM (SELECT arm, customer_id,
             coalesce(sum(revenue) FILTER (WHERE kind = 'purchase'), 0)::float8 AS revenue
      FROM feedback_events
      WHERE experiment_id = $1
      GROUP BY arm, customer_id) AS per_customer
GROUP BY arm
"""


async def customer_revenues(pool: asyncpg.Pool, experiment_id: str) -> dict[str, list[float]]:
    """Per arm, the purchase revenue of each customer with feedback in it (0 for those who
    bought nothing): the sample the revenue-per-customer bootstrap resamples."""
    rows = await pool.fetch(CUSTOMER_REVENUES, experiment_id)
    return {row["arm"]: list(row["revenues"]) for row in rows}
