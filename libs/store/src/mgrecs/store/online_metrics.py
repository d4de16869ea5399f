"""Online accuracy (`online_metrics`): what the served lists of a version were worth against
the purchases that followed them; read by the drift check, the status and the dashboard."""

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

SERVED_THEN_BOUGHT = """
WITH first AS (
    SELECT DISTINCT ON (customer_id) customer_id, served_at, product_ids[1:$3] AS top
    FROM served
    WHERE model_version = $1 AND served_at >= $2 AND endpoint = 'user'
      AND customer_id IS NOT NULL
    ORDER BY customer_id, served_at
)
SELECT f.customer_id, f.top, array_agg(DISTINCT i.product_id) AS bought
FROM first f
JOIN orders o ON o.customer_id = f.customer_id AND o.status = 'placed'
     AND o.ordered_at > f.served_at
JOIN order_items i ON i.order_id = o.order_id
GROUP BY f.customer_id, f.top
ORDER BY f.customer_id
"""
"""Per customer served a `user` list by version $1 since $2 who bought afterwards: the
first such list's top $3 and the distinct products of their placed orders after it."""

SAVE = """
INSERT INTO online_metrics (model_version, day, customers, "precision@10", "recall@10",
                            "ndcg@10")
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (model_version, day) DO UPDATE SET
    customers = excluded.customers, "precision@10" = excluded."precision@10",
    "recall@10" = excluded."recall@10", "ndcg@10" = excluded."ndcg@10", measured_at = now()
"""

LATEST = """
SELECT DISTINCT ON (model_version) model_version, day, customers, "precision@10",
       "recall@10", "ndcg@10", measured_at
FROM online_metrics
WHERE model_version = ANY($1::text[])
ORDER BY model_version, day DESC
"""


@dataclass(frozen=True)
class ServedThenBought:
    customer_id: str
    top: list[str]
    bought: list[str]


@dataclass(frozen=True)
class OnlineMetrics:
    customers: int
    precision: float | None
    recall: float | None
    ndcg: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Keys as the offline metrics name them."""
        return {
            "customers": self.customers,
            "precision@10": self.precision,
            "recall@10": self.recall,
            "ndcg@10": self.ndcg,
        }


async def served_then_bought(
    pool: asyncpg.Pool, version: str, since: datetime, k: int = 10
) -> list[ServedThenBought]:
    rows = await pool.fetch(SERVED_THEN_BOUGHT, version, since, k)
    return [
        ServedThenBought(row["customer_id"], list(row["top"]), list(row["bought"])) for row in rows
    ]


async def save(pool: asyncpg.Pool, version: str, day: date, metrics: OnlineMetrics) -> None:
    """Store (or replace) `version`'s figures of `day`."""
    await pool.execute(
        SAVE, version, day, metrics.customers, metrics.precision, metrics.recall, metrics.ndcg
    )


async def latest(pool: asyncpg.Pool, versions: list[str]) -> dict[str, OnlineMetrics]:
    """The newest stored figures of each of `versions` that has some."""
    rows = await pool.fetch(LATEST, versions)
    return {
        row["model_version"]: OnlineMetrics(
            row["customers"], row["precision@10"], row["recall@10"], row["ndcg@10"]
        )
        for row in rows
    }
