"""Cost of the impact report and of the online accuracy read (issue 20, items 2 and 3) on a
shop of 20,000 customers and 2,000 products: 100,000 answers of 25 products over 30 days and
40,000 placed orders of 3 lines over the last 14. Prints each statement's server time
(EXPLAIN ANALYZE) and whether the attribution reads `served` through its (customer_id,
served_at) index. Run: `.venv/bin/python bench/impact.py` (MGRECS_BENCH_DATABASE_URL: a
server to use, else an embedded one).
"""

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from mgrecs.common.db import create_pool
from mgrecs.common.served import ServedList
from mgrecs.store.impact import GROUPED, KEYS, LINES, NO_JIT, PER_CUSTOMER
from mgrecs.store.impact_report import impact_report
from mgrecs.store.online_metrics import SERVED_THEN_BOUGHT
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.served import write_served
from support import migrated_database

CUSTOMERS, PRODUCTS, ANSWERS, ORDERS = 20_000, 2_000, 100_000, 40_000
NOW = datetime(2026, 12, 7, tzinfo=UTC)


async def seed(pool: asyncpg.Pool, rng: random.Random) -> None:
    products = [f"P{n:05d}" for n in range(PRODUCTS)]
    await insert_products(
        pool, [StoredProduct(p, category=f"cat{n % 20}") for n, p in enumerate(products)]
    )
    batch: list[ServedList] = []
    for n in range(ANSWERS):
        batch.append(
            ServedList(
                served_id=f"s{n}",
                served_at=NOW - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                endpoint="user",
                customer_id=f"C{rng.randrange(CUSTOMERS):05d}",
                product_ids=rng.sample(products, 25),
                source=rng.choice(["cache", "realtime"]),
                model_version=rng.choice(["v1", "v2"]),
            )
        )
        if len(batch) == 5000:
            await write_served(pool, batch)
            batch = []
    orders = [
        StoredOrder(
            f"o{n}",
            f"C{rng.randrange(CUSTOMERS):05d}",
            NOW - timedelta(seconds=rng.uniform(0, 14 * 86400)),
            [StoredLine(i, p, 1, 9.5) for i, p in enumerate(rng.sample(products, 3))],
            region="north",
        )
        for n in range(ORDERS)
    ]
    for start in range(0, ORDERS, 5000):
        await insert_orders(pool, orders[start : start + 5000])
    await pool.execute("ANALYZE")


async def explain(pool: asyncpg.Pool, statement: str, *args: object) -> tuple[float, str]:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(NO_JIT)  # as impact_report runs them
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *args)
    document = (json.loads(plan) if isinstance(plan, str) else plan)[0]
    return document["Execution Time"], json.dumps(document["Plan"])


async def main() -> None:
    async with migrated_database("mgrecs_bench_impact") as url:
        pool = await create_pool(url, max_size=2)
        try:
            await seed(pool, random.Random(20))
            start, end, window = NOW - timedelta(days=7), NOW, timedelta(days=7)
            version = KEYS["model_version"]
            grouped = GROUPED.format(lines=LINES, keys=version, first=version)
            ms, plan = await explain(pool, grouped, start, end, window)
            uses_index = "served_customer" in plan or "customer_id_served_at_idx" in plan
            print(f"grouped by model_version, 7 days: {ms:.0f} ms server")
            print(f"reads served by (customer_id, served_at): {uses_index}")
            ms, _ = await explain(pool, PER_CUSTOMER.format(lines=LINES), start, end, window)
            print(f"uplift per customer, 7 days: {ms:.0f} ms server")
            ms, _ = await explain(pool, SERVED_THEN_BOUGHT, "v1", NOW - timedelta(days=30), 10)
            print(f"online accuracy read (v1, 30 days): {ms:.0f} ms server")
            cpu, wall = time.process_time(), time.perf_counter()
            report = await impact_report(pool, start, end, 7.0, ["model_version"])
            print(
                f"whole report: {time.perf_counter() - wall:.2f} s wall, client CPU "
                f"{time.process_time() - cpu:.2f} s; attributed "
                f"{report.total.attributed.revenue:.0f} of "
                f"{report.total.attributed.revenue + report.total.baseline.revenue:.0f}; "
                f"uplift {report.uplift.difference.value if report.uplift else None}"
            )
        finally:
            await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
