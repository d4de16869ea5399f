"""Attribution of real orders to what was served (`GET /v1/reports/impact`, `mgrecs impact`).

A placed order line is influenced when its customer was served its product within the
attribution window before the order (`ordered_at - window <= served_at <= ordered_at`); it is
attributed to the latest such answer's model version, source and arm. The other lines are the
baseline. Definitions and limits: docs/concepts.md, Impact.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast, get_args

if TYPE_CHECKING:  # `mgrecs --help` names DIMENSIONS without loading the driver
    import asyncpg

Dimension = Literal["model_version", "source", "arm", "region", "category", "day"]
DIMENSIONS: tuple[str, ...] = get_args(Dimension)

MAX_DIMENSIONS = 2


def parse_dimensions(value: str) -> list[Dimension]:
    """`model_version`, or up to MAX_DIMENSIONS distinct dimensions separated by commas
    (`model_version,day`); ValueError saying what is wrong otherwise."""
    names = [part.strip() for part in value.split(",")]
    if not 1 <= len(names) <= MAX_DIMENSIONS or len(set(names)) != len(names):
        raise ValueError(f"one or {MAX_DIMENSIONS} distinct dimensions, comma-separated")
    for name in names:
        if name not in DIMENSIONS:
            raise ValueError(f"{name[:40]!r} is not one of {', '.join(DIMENSIONS)}")
    return [cast(Dimension, name) for name in names]


KEYS: dict[str, str] = {
    "model_version": "l.model_version",
    "source": "l.source",
    "arm": "l.arm",
    "region": "l.region",
    "category": "l.category",
    "day": "to_char(l.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
"""Each dimension's expression over LINES (fixed texts: the statement is never built from
input)."""

LINES = """
SELECT o.order_id, o.customer_id, o.ordered_at, o.region, i.product_id, i.quantity,
       (i.price * i.quantity)::float8 AS revenue, p.category,
       s.model_version, s.source, s.arm, s.experiment_id, s.served_id IS NOT NULL AS influenced
FROM orders o
JOIN order_items i ON i.order_id = o.order_id
LEFT JOIN products p ON p.product_id = i.product_id
LEFT JOIN LATERAL (
    SELECT s.served_id, s.model_version, s.source, s.arm, s.experiment_id
    FROM served s
    WHERE s.customer_id = o.customer_id
      AND s.served_at >= o.ordered_at - $3::interval AND s.served_at <= o.ordered_at
      AND i.product_id = ANY (s.product_ids)
    ORDER BY s.served_at DESC, s.served_id DESC
    LIMIT 1
) s ON TRUE
WHERE o.status = 'placed' AND o.ordered_at >= $1 AND o.ordered_at < $2
"""
"""Every placed line of [$1, $2) with the latest answer that served its product to its
customer in the window $3 before it (none: not influenced). The lateral read walks
`served_customer_idx` (customer, served_at) of the partitions the window touches."""

GROUPED = """
WITH l AS ({lines})
SELECT {keys}, l.influenced, GROUPING({first}) = 1 AS total,
       coalesce(sum(l.revenue), 0)::float8 AS revenue,
       count(DISTINCT l.order_id) AS orders,
       coalesce(sum(l.quantity), 0)::bigint AS items,
       count(DISTINCT l.customer_id) AS customers
FROM l
GROUP BY GROUPING SETS (({keys}, l.influenced), (l.influenced))
ORDER BY total, {keys}, l.influenced DESC
"""
"""Per group and influenced flag, and (rows `total`) per influenced flag over all groups: one
pass over the lines, distinct counts exact in both."""

NO_JIT = "SET LOCAL jit = off"
"""The lateral read's estimated cost sets off JIT compilation, which takes longer (about 2 s
per statement, bench/impact.py) than the statement runs without it."""

PER_CUSTOMER = """
WITH shown AS (
    SELECT DISTINCT s.customer_id, p.product_id
    FROM served s, unnest(s.product_ids) AS p (product_id)
    WHERE s.customer_id IS NOT NULL
      AND s.served_at >= $1::timestamptz - $3::interval AND s.served_at < $2
),
l AS ({lines}),
bought AS (
    SELECT customer_id, product_id, bool_or(influenced) AS influenced
    FROM l GROUP BY customer_id, product_id
)
SELECT c.customer_id, c.shown,
       count(b.product_id) FILTER (WHERE b.influenced) AS bought_shown,
       count(b.product_id) FILTER (WHERE NOT b.influenced) AS bought_other
FROM (SELECT customer_id, count(*) AS shown FROM shown GROUP BY customer_id) c
LEFT JOIN bought b ON b.customer_id = c.customer_id
GROUP BY c.customer_id, c.shown
ORDER BY c.customer_id
"""
"""Per customer served in the period (or the window before it): how many distinct products
they were shown, how many of those they bought influenced, how many others they bought."""

ARMS = """
WITH members AS (
    SELECT DISTINCT s.experiment_id, s.arm, s.customer_id
    FROM served s
    WHERE s.customer_id IS NOT NULL AND s.experiment_id IS NOT NULL
      AND s.served_at >= $1::timestamptz - $3::interval AND s.served_at < $2
),
spent AS (
    SELECT o.customer_id, sum(i.price * i.quantity)::float8 AS revenue
    FROM orders o JOIN order_items i ON i.order_id = o.order_id
    WHERE o.status = 'placed' AND o.ordered_at >= $1 AND o.ordered_at < $2
      AND o.customer_id IN (SELECT customer_id FROM members)
    GROUP BY o.customer_id
)
SELECT m.experiment_id, m.arm, count(*) AS customers,
       coalesce(sum(sp.revenue), 0)::float8 AS revenue,
       coalesce(sum(sp.revenue * sp.revenue), 0)::float8 AS revenue_squares
FROM members m LEFT JOIN spent sp ON sp.customer_id = m.customer_id
GROUP BY m.experiment_id, m.arm
ORDER BY m.experiment_id, m.arm
"""
"""Per experiment arm: the customers served in it and their placed revenue in the period
(all of it, influenced or not): the holdout comparison."""


@dataclass(frozen=True)
class GroupTotals:
    """One group's lines, split into influenced (attributed) and not (baseline)."""

    key: tuple[str | None, ...]
    influenced: bool
    total: bool
    revenue: float
    orders: int
    items: int
    customers: int


@dataclass(frozen=True)
class CustomerRates:
    """One served customer: distinct products shown, bought after being shown, bought
    otherwise."""

    customer_id: str
    shown: int
    bought_shown: int
    bought_other: int


@dataclass(frozen=True)
class ArmSpend:
    experiment_id: str
    arm: str
    customers: int
    revenue: float
    revenue_squares: float


def _window(days: float) -> timedelta:
    return timedelta(days=days)


async def grouped(
    conn: "asyncpg.Connection",
    start: datetime,
    end: datetime,
    window_days: float,
    group_by: Sequence[Dimension],
) -> list[GroupTotals]:
    """Revenue, orders, items and customers of [start, end) per group and influenced flag,
    then the totals. `group_by` must name dimensions of DIMENSIONS (checked: the statement is
    built from their fixed expressions)."""
    if not group_by or any(d not in KEYS for d in group_by):
        raise ValueError(f"group_by: one or more of {', '.join(DIMENSIONS)}")
    keys = ", ".join(KEYS[d] for d in group_by)
    statement = GROUPED.format(lines=LINES, keys=keys, first=KEYS[group_by[0]])
    rows = await conn.fetch(statement, start, end, _window(window_days))
    return [
        GroupTotals(
            key=tuple(row[i] for i in range(len(group_by))),
            influenced=row["influenced"],
            total=row["total"],
            revenue=row["revenue"],
            orders=row["orders"],
            items=row["items"],
            customers=row["customers"],
        )
        for row in rows
    ]


async def customer_rates(
    conn: "asyncpg.Connection", start: datetime, end: datetime, window_days: float
) -> list[CustomerRates]:
    """Per customer served: shown, bought shown (influenced), bought other (`PER_CUSTOMER`)."""
    rows = await conn.fetch(PER_CUSTOMER.format(lines=LINES), start, end, _window(window_days))
    return [CustomerRates(**dict(row)) for row in rows]


async def arm_spend(
    conn: "asyncpg.Connection", start: datetime, end: datetime, window_days: float
) -> list[ArmSpend]:
    """Per experiment arm: customers served in it and their revenue in the period."""
    rows = await conn.fetch(ARMS, start, end, _window(window_days))
    return [ArmSpend(**dict(row)) for row in rows]


async def catalogue_size(conn: "asyncpg.Connection") -> int:
    """Products known (the denominator of the not-shown purchase rate)."""
    count: int = await conn.fetchval("SELECT count(*) FROM products")
    return count
