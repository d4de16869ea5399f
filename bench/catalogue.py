"""The products backfill: a catalogue file of 100,000 products (CSV, brand and size columns
as attributes) through `mgrecs backfill-products`' code — read, validate each `ProductEvent`,
publish keyed by product id and wait for the broker's acks — to an embedded broker (Tansu).

Prints products per second (wall clock) and this process's CPU seconds per 1,000 products
(the figure that holds on a machine shared with other work).

Usage: python bench/catalogue.py [--products N]
"""

import argparse
import asyncio
import csv
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mgrecs.cli.embedded import EmbeddedBroker
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.settings import Settings
from mgrecs.ingest.product_files import backfill_products

CATEGORIES = ("grocery", "beverages", "household", "electronics", "apparel", "toys")
BRANDS = ("Lumo", "Northwind", "Acme", "Brite", "Oakhill", "Verde")


def write_catalogue(path: Path, products: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["product_id", "name", "category", "price", "cost", "in_stock", "launched_at"]
            + ["updated_at", "brand", "size"]
        )
        for number in range(products):
            price = rng.uniform(1, 500)
            writer.writerow(
                [
                    f"P{number:07d}",
                    f"Product {number}",
                    rng.choice(CATEGORIES),
                    f"{price:.2f}",
                    f"{price * rng.uniform(0.4, 0.8):.2f}",
                    rng.choice(("yes", "yes", "no")),
                    "2026-10-01T00:00:00Z",
                    "2026-11-01T00:00:00Z",
                    rng.choice(BRANDS),
                    rng.choice(("S", "M", "L")),
                ]
            )


async def run(path: Path, products: int, bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}.")
    await ensure_topics(settings)
    cpu, wall = time.process_time(), time.perf_counter()
    summary = await backfill_products(path, settings)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert summary.published == products, summary
    print(
        f"products backfill: {products:,} products in {wall:.1f} s = {products / wall:,.0f} "
        f"products/s; {cpu:.1f} CPU s in this process = {cpu / products * 1000:.3f} CPU s "
        "per 1,000 products"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    args = parser.parse_args(argv)
    path = Path(tempfile.mkdtemp(prefix="mgbench-catalogue")) / "catalogue.csv"
    write_catalogue(path, args.products)
    broker = EmbeddedBroker().start()
    try:
        asyncio.run(run(path, args.products, broker.bootstrap))
    finally:
        broker.stop()
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1:])
