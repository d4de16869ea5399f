"""Benchmark: how fast a purchase sent with PutEvents shows in GetRecommendations.

    make bench-realtime
    make bench-realtime BENCH_ARGS="--replicas 2"
    .venv/bin/python bench/realtime.py --customers 5000 --users 300 --replicas 2

Trains a model on generated orders, registers it, starts `--replicas` engine services, each
its own process (`mgrecs-engine`), on an embedded broker (topic `engine-events`), then for
each of `--users` brand-new customers sends one purchase with the real aioboto3
`personalize-events` client to the first replica and asks the last one (the same with one
replica) with `personalize-runtime` for recommendations at once, and again until the answer
reflects the purchase (personalised: a reason "bought <product>"; at most
`MAX_WAIT_SECONDS`). Prints the latencies and how many answers reflected the purchase on the
first ask and in the end. Uses the embedded PostgreSQL unless MGRECS_BENCH_DATABASE_URL
names a server.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mgrecs.cli.embedded import EmbeddedBroker, free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.personalize import events_client, runtime_client
from mgrecs.common.settings import Settings
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction
from mgrecs.ingest.sample_data import generate
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support import migrated_database

MAX_WAIT_SECONDS = 5.0
"""How long the last replica is asked again for an answer that reflects the purchase."""
POLL_SECONDS = 0.005


async def _wait_ready(url: str) -> None:
    """Until the replica's `/readyz` says 200 (its history caught up with the topic)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(600):
            if (await client.get(url)).status_code == 200:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready within a minute")


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
    broker = EmbeddedBroker().start()
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

        base = Settings(database_url=url, kafka_bootstrap=broker.bootstrap)
        await ensure_topics(base)
        replicas = []
        logs = Path(tempfile.mkdtemp(prefix="mgrtlog"))
        for n in range(args.replicas):
            port = free_port()
            engine = ServiceProcess(
                f"engine-{n}",
                ["mgrecs-engine"],
                {
                    "MGRECS_ENV": "development",  # unsecured, on this machine
                    "MGRECS_DATABASE_URL": url,
                    "MGRECS_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "MGRECS_ENGINE_PORT": str(port),
                    "MGRECS_LOG_LEVEL": "WARNING",
                },
                logs / f"engine-{n}.log",
            )
            engine.start()
            services.append(engine)
            endpoint = f"http://127.0.0.1:{port}"
            replicas.append(base.model_copy(update={"personalize_endpoint_url": endpoint}))
            await asyncio.to_thread(wait_healthy, f"{endpoint}/healthz", engine)
        for replica in replicas:
            await _wait_ready(f"{replica.personalize_endpoint_url}/readyz")
        sender, asked = replicas[0], replicas[-1]

        rng = random.Random(1)
        products = model.item_ids
        put_ms: list[float] = []
        get_ms: list[float] = []
        seen_ms: list[float] = []
        first = reflected = 0
        async with events_client(sender) as events, runtime_client(asked) as runtime:
            for n in range(args.users):
                user, product = f"NEW{n:06d}", rng.choice(products)
                sent = time.perf_counter()
                await events.put_events(
                    trackingId=sender.tracking_id,
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
                asks = 0
                while True:
                    answer = await runtime.get_recommendations(
                        campaignArn=asked.user_campaign_arn, userId=user, numResults=10
                    )
                    done = time.perf_counter()
                    if asks == 0:
                        get_ms.append((done - acked) * 1000)
                    asks += 1
                    reasons = [" ".join(item.get("reason", [])) for item in answer["itemList"]]
                    if any(f"bought {product}" in reason for reason in reasons):
                        reflected += 1
                        first += asks == 1
                        seen_ms.append((done - sent) * 1000)
                        break
                    if done - sent > MAX_WAIT_SECONDS:
                        break
                    await asyncio.sleep(POLL_SECONDS)
                put_ms.append((acked - sent) * 1000)
        where = "the same replica" if args.replicas == 1 else f"replica {args.replicas} of them"
        print(
            f"{args.users} brand-new customers, one purchase each sent to replica 1, "
            f"asked {where} right after (and again until reflected):"
        )
        _percentiles("PutEvents", put_ms)
        _percentiles("GetRecommendations right after", get_ms)
        if seen_ms:
            _percentiles("purchase sent -> answer that has it", seen_ms)
        print(f"answers reflecting the purchase on the first ask: {first}/{args.users}")
        print(f"reflected within {MAX_WAIT_SECONDS:.0f} s: {reflected}/{args.users}")
    finally:
        stop_all(services)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=1, help="engine processes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
