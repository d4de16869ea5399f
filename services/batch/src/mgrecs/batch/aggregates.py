"""Exact per-region aggregates of a cache generation (migration 0009): for each region and
product, the region's active customers who got the product in their cached list, the
region's active customers, the share and the mean score, so region questions can be
answered without sampling.

A shard tallies its own customers (`tally`) and writes the partial counts with its rows; the
flip that makes the generation current merges the shards' partials
(`mgrecs.store.cache_generations`). A customer's region is `customers.region` (as the region
page reads it); customers without one are left out, and scores are the cached (rounded)
ones, so the table equals a direct computation from the cached rows.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg
import numpy as np

from mgrecs.engine.records import Scored
from mgrecs.store.cache_generations import write_region_partials

SCORE_DIGITS = 6
"""The cache's rounding of scores (`cache.cache_json`)."""


@dataclass
class RegionTally:
    """One shard's partial aggregates."""

    active: Counter[str] = field(default_factory=Counter)
    """Active customers of the shard per region."""
    customers: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(region, product) -> customers of the shard who got it."""
    score_sums: defaultdict[tuple[str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )


def tally(regions: Mapping[str, str | None], users: Mapping[str, Sequence[Scored]]) -> RegionTally:
    """Partials of a shard: `regions` maps each of its active customers to their region,
    `users` holds their lists (customers the model could not answer have none)."""
    result = RegionTally(active=Counter(r for r in regions.values() if r is not None))
    keys: list[tuple[str, str]] = []
    scores: list[float] = []
    for customer, scored in users.items():
        region = regions.get(customer)
        if region is not None:
            keys += [(region, item.item_id) for item in scored]
            scores += [round(item.score, SCORE_DIGITS) for item in scored]
    result.customers.update(keys)  # counted in C, not a Python call per item
    # Each key's sum in list order (as adding item by item would), with numpy.
    number: dict[tuple[str, str], int] = {}
    codes = np.fromiter(
        (number.setdefault(key, len(number)) for key in keys), np.int64, count=len(keys)
    )
    sums = np.zeros(len(number), dtype=np.float64)
    np.add.at(sums, codes, np.asarray(scores, dtype=np.float64))
    result.score_sums.update(zip(number, sums.tolist(), strict=True))
    return result


async def write_partials(
    conn: asyncpg.Connection, generation: int, shard: int, result: RegionTally
) -> None:
    """Inside the shard's transaction; the flip merges them (`cache_generations`)."""
    await write_region_partials(
        conn,
        generation,
        shard,
        [
            (region, product, count, result.score_sums[(region, product)])
            for (region, product), count in result.customers.items()
        ],
    )
