"""Benchmark: how fast a purchase sent with PutEvents shows in GetRecommendations.

    make bench-realtime
    .venv/bin/python bench/realtime.py --customers 5000 --users 300

Trains a model on generated orders, registers it, starts the engine service as its own
process (`mgrecs-engine`), then for each of `--users` brand-new customers sends one purchase
with the real aioboto3 `personalize-events` client and immediately asks
`personalize-runtime` for recommendations. Prints the round-trip latencies and the share of
answers that already reflect the purchase (personalised: a reason "bought <product>").
Uses the embedded PostgreSQL unless MGRECS_BENCH_DATABASE_URL names a server.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common.db import create_pool
from mgrecs.common.personalize import events_client, runtime_client
from mgrecs.common.settings import Settings
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction
from mgrecs.ingest.sample_data import generate
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support import migrated_database


def _percentiles(label: str, millis: list[float]) -> None:
    cuts = statistics.quantiles(millis, n=100, method="inclusive")
    print(
        f"{label:<40} p50={cuts[49]:6.1f} ms  p95={cuts[94]:6.1f} ms  p99={cuts[98]:6.1f} ms"
        f"  max={max(millis):6.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    async with migrated_database("mgrecs_bench_realtime") as url:
        await measure(args, url)


async def measure(args: argparse.Namespace, url: str) -> None:
    services: list[ServiceProcess] = []
    try:
        data = generate(
            seed=5, customers=args.customers, products=args.products, orders=args.orders
        )
        interactions = [
            Interaction(
                o.customer.customer_id,
                line.product_id,
                line.quantity,
                o.ordered_at,
                o.customer.region,
            )
            for o in data.orders
            for line in o.lines
        ]
        started = time.perf_counter()
        model = RecommenderModel.fit(interactions)
        artifact = Path(tempfile.mkdtemp(prefix="mgrtart")) / "model.npz"
        model.save(artifact)
        print(
            f"model: {len(model.customer_ids)} customers, {len(model.item_ids)} products, "
            f"{len(interactions)} lines, fitted in {time.perf_counter() - started:.1f} s"
        )
        pool = await create_pool(url)
        bench = ModelVersion("bench", RECIPE, str(artifact), 0, 0, 0)
        await register(pool, bench, promote=True, reason="the benchmark's")
        await pool.close()

        port = free_port()
        settings = Settings(
            database_url=url, engine_port=port, personalize_endpoint_url=f"http://127.0.0.1:{port}"
        )
        engine = ServiceProcess(
            "engine",
            ["mgrecs-engine"],
            {
                "MGRECS_ENV": "development",  # unsecured, on this machine
                "MGRECS_DATABASE_URL": url,
                "MGRECS_ENGINE_PORT": str(port),
                "MGRECS_LOG_LEVEL": "WARNING",
            },
            Path(tempfile.mkdtemp(prefix="mgrtlog")) / "engine.log",
        )
        engine.start()
        services.append(engine)
        await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}/healthz", engine)

        rng = random.Random(1)
        products = model.item_ids
        put_ms: list[float] = []
        get_ms: list[float] = []
        reflected = 0
        async with events_client(settings) as events, runtime_client(settings) as runtime:
            for n in range(args.users):
                user, product = f"NEW{n:06d}", rng.choice(products)
                sent = time.perf_counter()
                await events.put_events(
                    trackingId=settings.tracking_id,
                    userId=user,
                    sessionId=user,
                    eventList=[
                        {
                            "eventId": f"{user}#1",
                            "eventType": "purchase",
                            "itemId": product,
                            "sentAt": datetime.now(UTC),
                        }
                    ],
                )
                acked = time.perf_counter()
                answer = await runtime.get_recommendations(
                    campaignArn=settings.user_campaign_arn, userId=user, numResults=10
                )
                done = time.perf_counter()
                put_ms.append((acked - sent) * 1000)
                get_ms.append((done - acked) * 1000)
                reasons = [" ".join(item.get("reason", [])) for item in answer["itemList"]]
                reflected += any(f"bought {product}" in reason for reason in reasons)
        print(f"{args.users} brand-new customers, one purchase each, asked right after:")
        _percentiles("PutEvents", put_ms)
        _percentiles("GetRecommendations right after", get_ms)
        _percentiles(
            "purchase sent -> answer that has it",
            [a + b for a, b in zip(put_ms, get_ms, strict=True)],
        )
        print(f"answers reflecting the purchase: {reflected}/{args.users}")
    finally:
        stop_all(services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=300)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
