"""What the jobs read from the store, as the engine takes it: purchases as engine
interactions, the product catalogue, the order lines' quality report.

Purchases are the rows of `order_items`: the tracker keeps there only the lines that count
(cancelled and returned ones are not there, mgrecs.store.orders)."""

from contextlib import aclosing

import asyncpg

from mgrecs.common.quality import QualityReport
from mgrecs.common.quality_checks import QualityAccumulator
from mgrecs.engine.dataset import Lines, LinesBuilder
from mgrecs.engine.records import ProductInfo
from mgrecs.store import order_reads, products

FETCH_ROWS = 100_000
"""Order lines read per round trip while loading the training set."""


async def load_lines(pool: asyncpg.Pool) -> Lines:
    """Every purchased order line (the model's whole training set) in columns, read in
    pieces: 10M lines as fetched records or Interaction objects would take GiBs at once."""
    builder = LinesBuilder()
    async with aclosing(order_reads.interactions(pool, FETCH_ROWS)) as batches:
        async for rows in batches:
            builder.add(
                [row[0] for row in rows],
                [row[1] for row in rows],
                (row[2] for row in rows),
                (row[3] / 1_000_000 for row in rows),
                [row[4] for row in rows],
            )
    return builder.build()


async def check_order_lines(
    pool: asyncpg.Pool, max_bad_rate: float, catalogue: list[str]
) -> QualityReport:
    """The data-quality report of every order line the model would be trained on."""
    accumulator = QualityAccumulator()
    async with aclosing(order_reads.order_lines(pool, FETCH_ROWS)) as batches:
        async for rows in batches:
            accumulator.add_lines(*(list(column) for column in zip(*rows, strict=True)))
    return accumulator.report("retrain", "export", max_bad_rate, catalogue)


async def load_products(pool: asyncpg.Pool) -> list[ProductInfo]:
    """Every catalogue product, bought or not (for the content back-off and the rules)."""
    return [
        ProductInfo(
            row["product_id"],
            row["name"],
            row["category"],
            None if row["price"] is None else float(row["price"]),
            row["active"],
        )
        for row in await products.catalogue(pool)
    ]
