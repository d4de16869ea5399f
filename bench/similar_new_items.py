"""Cost of the new products among a product's similar items, per request (issue 20 loose end):
the query the API ran before (every new product read and counted per request, kept as the
property test's reference in tests/api/test_new_products_keeper.py) against what it reads now
that the new products are in memory (`PRODUCT_LIKE_NEW`: the asked product's category,
attributes and co-purchases with the new ones), and the cached similar items read alone
(`SIMILAR_LIST`) against the read that brings that part along (`SIMILAR_LIST_LIKE_NEW`).
A shop of 20,000 products bought with a long tail (about 144,000 order lines) and 50 new
products in 1 % of the orders; a rarely sold product and the best seller. Prints each
statement's server time (EXPLAIN ANALYZE, median and 90th percentile of 30).
Run: `.venv/bin/python bench/similar_new_items.py` (MGRECS_BENCH_DATABASE_URL: a server to
use, else an embedded one).
"""

import asyncio
import json
import random
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.db import create_pool
from mgrecs.store.cache import SIMILAR, SIMILAR_LIST, put_current
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import PRODUCT_LIKE_NEW, SIMILAR_LIST_LIKE_NEW
from support import migrated_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from api.test_new_products_keeper import PER_REQUEST_LIKE  # noqa: E402  (the old query)

PRODUCTS, NEW, LINES, RUNS = 20_000, 50, 144_000, 30
NOW = datetime(2026, 12, 7, tzinfo=UTC)


async def seed(pool: asyncpg.Pool, rng: random.Random) -> None:
    rows = [
        (f"p{n}", f"cat{n % 20}", NOW - timedelta(days=400), {"brand": rng.choice("abcdef")})
        for n in range(PRODUCTS)
    ] + [
        (f"n{n}", f"cat{n % 20}", NOW - timedelta(days=1), {"brand": rng.choice("abcdef")})
        for n in range(NEW)
    ]
    await pool.executemany(
        "INSERT INTO products (product_id, category, launched_at, attributes)"
        " VALUES ($1, $2, $3, $4)",
        rows,
    )
    weights = [1.0 / (n + 1) for n in range(PRODUCTS)]
    orders: list[StoredOrder] = []
    lines = 0
    while lines < LINES:
        picked = {
            f"p{n}" for n in rng.choices(range(PRODUCTS), weights=weights, k=rng.randint(1, 5))
        }
        if rng.random() < 0.01:
            picked.add(f"n{rng.randrange(NEW)}")
        ordered_at = NOW - timedelta(days=rng.randrange(300))
        customer = f"c{rng.randrange(20_000)}"
        lines_of = [StoredLine(n, p) for n, p in enumerate(sorted(picked))]
        orders.append(StoredOrder(f"o{len(orders)}", customer, ordered_at, lines_of))
        lines += len(picked)
    for start in range(0, len(orders), 5_000):
        await insert_orders(pool, orders[start : start + 5_000])
    for product in ("p0", "p5000"):
        await put_current(pool, SIMILAR, product, [{"product_id": "p1", "score": 0.5}])
    await pool.execute("VACUUM ANALYZE")


async def server_ms(pool: asyncpg.Pool, sql: str, *args: Any) -> tuple[float, float]:
    times = []
    for _ in range(RUNS):
        plan = await pool.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        times.append(plan[0]["Execution Time"])
    return statistics.median(times), sorted(times)[int(RUNS * 0.9) - 1]


async def main() -> None:
    async with migrated_database("mgrecs_bench_similar_new") as url:
        pool = await create_pool(url)
        try:
            await seed(pool, random.Random(7))
            new_ids = [f"n{n}" for n in range(NEW)]
            for label, product in (("rarely sold p5000", "p5000"), ("best seller p0", "p0")):
                statements = {
                    "before: NEW_LIKE (per request)": (
                        PER_REQUEST_LIKE,
                        (product, "none", 30, NOW, 1000),
                    ),
                    "now: PRODUCT_LIKE_NEW": (PRODUCT_LIKE_NEW, (product, new_ids)),
                    "SIMILAR_LIST (cache read alone)": (SIMILAR_LIST, (product,)),
                    "now: SIMILAR_LIST_LIKE_NEW": (SIMILAR_LIST_LIKE_NEW, (product, new_ids)),
                }
                for name, (sql, args) in statements.items():
                    median, p90 = await server_ms(pool, sql, *args)
                    print(f"{label:18} {name:34} median {median:6.2f} ms  p90 {p90:6.2f} ms")
        finally:
            await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
