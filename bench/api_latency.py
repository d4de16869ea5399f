"""Benchmark: write, train and infer at catalogue scale, then the API's latency on the cache.

    make bench-api                      # defaults below; figures go to bench/RESULTS.md by hand
    .venv/bin/python bench/api_latency.py --customers 50000 --orders 250000

Uses the embedded PostgreSQL unless MGRECS_BENCH_DATABASE_URL names a server. The API runs
as its own process (`mgrecs-api`), as deployed; the load comes from this process over
loopback with a bounded number of requests.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from support import migrated_database

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common.db import create_pool
from mgrecs.common.sample_data import generate
from mgrecs.common.settings import Settings
from mgrecs.tracker.store import write_orders

WRITE_CHUNK = 500


async def _timed(label: str, step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    seconds = time.perf_counter() - started
    print(f"{label:<34} {seconds:8.2f} s")
    return seconds


async def _load(
    client: httpx.AsyncClient, paths: list[str], concurrency: int
) -> tuple[list[float], float]:
    """Request every path with `concurrency` in flight; latencies (ms) and wall time (s)."""
    queue = list(reversed(paths))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            path = queue.pop()
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _report(label: str, latencies: list[float], wall: float) -> None:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"{label:<34} n={len(latencies):>5}  p50={cuts[49]:6.1f} ms  p95={cuts[94]:6.1f} ms  "
        f"p99={cuts[98]:6.1f} ms  {len(latencies) / wall:7.0f} req/s"
    )


async def run(args: argparse.Namespace) -> None:
    async with migrated_database("mgrecs_bench") as url:
        await measure(args, url)


async def measure(args: argparse.Namespace, url: str) -> None:
    services: list[ServiceProcess] = []
    try:
        settings = Settings(database_url=url, artifact_dir=tempfile.mkdtemp(prefix="mgart"))
        data = generate(
            seed=11, customers=args.customers, products=args.products, orders=args.orders
        )
        lines = sum(len(order.lines) for order in data.orders)
        print(
            f"data: {args.customers} customers, {args.products} products, "
            f"{len(data.orders)} orders, {lines} lines"
        )
        pool = await create_pool(url)

        async def write_all() -> None:
            for start in range(0, len(data.orders), WRITE_CHUNK):
                await write_orders(pool, data.orders[start : start + WRITE_CHUNK])

        seconds = await _timed("write orders (tracker store)", write_all)
        print(f"{'  = order lines per second':<34} {lines / seconds:8.0f}")
        await _timed("retrain (batch)", lambda: retrain(pool, settings))
        await _timed("infer: fill both cache tables", lambda: infer(pool, settings))
        users = [r[0] for r in await pool.fetch("SELECT user_id FROM offline_user_recommendations")]
        products = [r[0] for r in await pool.fetch("SELECT product_id FROM offline_similar_items")]
        regions = [r[0] for r in await pool.fetch("SELECT DISTINCT region FROM customers")]
        await pool.close()

        port = free_port()
        api = ServiceProcess(
            "api",
            ["mgrecs-api"],
            {
                "MGRECS_DATABASE_URL": url,
                "MGRECS_API_PORT": str(port),
                "MGRECS_LOG_LEVEL": "WARNING",
            },
            Path(tempfile.mkdtemp(prefix="mgapi")) / "api.log",
        )
        api.start()
        services.append(api)
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_healthy, f"{base}/healthz", api)

        rng = random.Random(3)
        n = args.requests
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            first = [f"/v1/regions/{region}/recommendations" for region in regions]
            latencies, _ = await _load(client, first, 1)
            print(
                f"{'region, first call in its window':<34} max={max(latencies):6.1f} ms "
                f"over {len(first)} regions (draws the sample)"
            )
            print(
                f"then {n} requests per endpoint: one at a time, then {args.concurrency} in flight"
            )
            for label, paths in (
                (
                    "GET /v1/users/{id}/recommendations",
                    [f"/v1/users/{rng.choice(users)}/recommendations" for _ in range(n)],
                ),
                (
                    "GET /v1/products/{id}/similar",
                    [f"/v1/products/{rng.choice(products)}/similar" for _ in range(n)],
                ),
                (
                    "GET /v1/regions/{r}/recommendations",
                    [f"/v1/regions/{rng.choice(regions)}/recommendations" for _ in range(n)],
                ),
            ):
                await _load(client, paths[: n // 10], args.concurrency)  # warm-up
                _report(label, *await _load(client, paths, 1))
                _report("  under load", *await _load(client, paths, args.concurrency))
    finally:
        stop_all(services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
