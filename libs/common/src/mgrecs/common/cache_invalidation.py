"""Operator invalidation of the current cache generation: one customer's row, a region's
customers' rows, or the whole generation. The API answers what is no longer cached in real
time (or from popularity), until the next generation becomes current."""

from dataclasses import dataclass

import asyncpg

from mgrecs.common.cache_tables import FLIP_LOCK, SIMILAR, USERS


@dataclass(frozen=True)
class Invalidated:
    generation: int | None
    """The generation invalidated; None when no generation was current."""
    users: int
    products: int


def _count(status: str) -> int:
    """Rows affected, from a command tag like `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])


async def invalidate(
    pool: asyncpg.Pool,
    *,
    everything: bool = False,
    region: str | None = None,
    customer: str | None = None,
) -> Invalidated:
    """Remove rows from the current generation (all of it: the generation is retired, so
    nothing is served from the cache). Under the flip lock, so it never races a flip."""
    if [everything, region is not None, customer is not None].count(True) != 1:
        raise ValueError("invalidate exactly one of: everything, a region, a customer")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(FLIP_LOCK)
        current = await conn.fetchval(
            "SELECT generation FROM cache_generations WHERE state = 'current'"
        )
        if current is None:
            return Invalidated(None, 0, 0)
        users = USERS.partition(current)
        if everything:
            user_rows = await conn.fetchval(f"SELECT count(*) FROM {users}")
            product_rows = await conn.fetchval(f"SELECT count(*) FROM {SIMILAR.partition(current)}")
            await conn.execute(
                "UPDATE cache_generations SET state = 'retired',"
                " error = 'invalidated by the operator' WHERE generation = $1",
                current,
            )
            return Invalidated(current, int(user_rows), int(product_rows))
        if region is not None:
            status = await conn.execute(
                f"DELETE FROM {users} r USING customers c"
                " WHERE c.customer_id = r.user_id AND c.region = $1",
                region,
            )
        else:
            status = await conn.execute(f"DELETE FROM {users} WHERE user_id = $1", customer)
        return Invalidated(current, _count(status), 0)
