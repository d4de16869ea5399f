"""The API's pool kept ready: each new connection prepares the statements the hot routes
run, and the pool opens its connections at start and keeps them, so no request pays for
either (bench/RESULTS.md, the api's pool kept ready).

A fresh connection's first run of the buy-again statement costs about 13 ms (asyncpg's
prepare, the server's first plan with cold catalogue caches) against 0.5 ms after. At 1,000
requests/s, a route's first load on unprepared connections held every connection at once,
the pool opened more (each unprepared too), and the queue took 0.3-0.5 s to drain."""

import asyncio

import asyncpg

from mgrecs.store import cache, model_versions, products, repurchase

NO_KEY = ""
"""A key no customer or region has: each statement runs, finds nothing."""

FILL_TIMEOUT_SECONDS = 10.0
"""`fill` gives up after this (the connections not opened are opened by requests)."""


async def prepare(conn: asyncpg.Connection, served_recipe: str) -> None:
    """Run each statement of the per-customer and region routes once on `conn`, so asyncpg
    keeps it prepared and the server has planned it (the pool's setup of a new connection).
    `served_recipe`: the lineage real-time answers come from, as the repository reads it."""
    await cache.user_list(conn, NO_KEY)
    await products.user_list_with_categories(conn, NO_KEY, [], [])
    await repurchase.buy_again(conn, NO_KEY, served_recipe)
    await model_versions.served_version(conn, served_recipe)
    await cache.region_generation(conn, NO_KEY)


async def fill(pool: asyncpg.Pool, size: int) -> None:
    """Open `size` connections of `pool` (each readied by the pool's setup): all held at
    once, then given back, so they are there before the first request. Any failure or
    the timeout gives every held one back and raises."""
    everyone = asyncio.Barrier(size)

    async def hold() -> None:
        async with pool.acquire():
            await everyone.wait()

    async with asyncio.timeout(FILL_TIMEOUT_SECONDS), asyncio.TaskGroup() as group:
        for _ in range(size):
            group.create_task(hold())
