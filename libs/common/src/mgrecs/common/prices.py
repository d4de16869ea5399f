"""The price table and the bill it makes of what a mode consumed (docs/cost.md).

`estimate` is pure: totals and prices in, bill lines out, so a test can hand-compute it.
Tiered prices apply to the totals given: a month's totals get the month's tiers; a day's are
priced as if the day were the month's first (an upper bound).
"""

import math
from dataclasses import dataclass

from mgrecs.common.settings import Settings

Tiers = tuple[tuple[float, float], ...]
"""`((up_to, price), ...)`, ascending; the last `up_to` is infinite."""

GB = 1e9


def parse_tiers(text: str) -> Tiers:
    """`"20000:0.2,inf:0.05"` to `((20000.0, 0.2), (inf, 0.05))`; ValueError if malformed."""
    tiers: list[tuple[float, float]] = []
    for part in text.split(","):
        limit, sep, price = part.strip().partition(":")
        if not sep:
            raise ValueError(f"tier {part!r} is not up_to:price")
        tier = (float(limit), float(price))
        if tier[1] < 0 or (tiers and tier[0] <= tiers[-1][0]) or math.isnan(tier[0]):
            raise ValueError(f"tier {part!r}: limits must rise and prices be >= 0")
        tiers.append(tier)
    if not tiers or tiers[-1][0] != math.inf:
        raise ValueError("the last tier must be inf:price")
    return tuple(tiers)


def tiered(quantity: float, tiers: Tiers) -> float:
    """The cost of `quantity` units, each tier's units at its price."""
    cost, below = 0.0, 0.0
    for up_to, price in tiers:
        units = min(quantity, up_to) - below
        if units <= 0:
            break
        cost += units * price
        below = up_to
    return cost


@dataclass(frozen=True)
class Prices:
    taken: str
    ingest_per_gb: float
    training_hour: float
    tps_hour: Tiers
    batch_per_1000: Tiers
    s3_gb_month: float
    min_provisioned_tps: float
    event_bytes: int
    machine_hour: float


def prices_from(settings: Settings) -> Prices:
    return Prices(
        taken=settings.price_date,
        ingest_per_gb=settings.price_ingest_per_gb,
        training_hour=settings.price_training_hour,
        tps_hour=parse_tiers(settings.price_tps_hour_tiers),
        batch_per_1000=parse_tiers(settings.price_batch_per_1000_tiers),
        s3_gb_month=settings.price_s3_gb_month,
        min_provisioned_tps=settings.price_min_provisioned_tps,
        event_bytes=settings.price_event_bytes,
        machine_hour=settings.machine_hour_price,
    )


@dataclass(frozen=True)
class Totals:
    """What a mode consumed over a period, in the units AWS bills."""

    events: float = 0.0
    dataset_bytes: float = 0.0
    training_hours: float = 0.0
    tps_hours: float = 0.0
    batch_inputs: float = 0.0
    stored_bytes: float = 0.0


@dataclass(frozen=True)
class BillLine:
    item: str
    quantity: float
    unit: str
    usd: float


def estimate(totals: Totals, prices: Prices) -> list[BillLine]:
    """The AWS bill of `totals` at `prices`, one line per billed item."""
    ingested = (totals.events * prices.event_bytes + totals.dataset_bytes) / GB
    return [
        BillLine("data ingestion", ingested, "GB", ingested * prices.ingest_per_gb),
        BillLine(
            "training",
            totals.training_hours,
            "training hours",
            totals.training_hours * prices.training_hour,
        ),
        BillLine(
            "real-time recommendations",
            totals.tps_hours,
            "TPS-hours",
            tiered(totals.tps_hours, prices.tps_hour),
        ),
        BillLine(
            "batch recommendations",
            totals.batch_inputs,
            "recommendations",
            tiered(totals.batch_inputs, tuple((u, p / 1000) for u, p in prices.batch_per_1000)),
        ),
        BillLine(
            "S3 storage",
            totals.stored_bytes / GB,
            "GB-months",
            totals.stored_bytes / GB * prices.s3_gb_month,
        ),
    ]
