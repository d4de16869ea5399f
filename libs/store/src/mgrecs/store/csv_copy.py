"""COPY a query's rows to a CSV file: PostgreSQL streams it, in constant memory."""

from pathlib import Path
from typing import Any

import asyncpg


async def copy_csv(pool: asyncpg.Pool, query: str, output: Path, *args: Any) -> int:
    """Write `query`'s rows (with its arguments) to `output` as CSV with a header; how many."""
    async with pool.acquire() as conn:
        status: str = await conn.copy_from_query(
            query, *args, output=output, format="csv", header=True
        )
    return int(status.rsplit(" ", 1)[-1])
