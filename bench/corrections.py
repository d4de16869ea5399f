"""The corrections drill of `make drill`: the same orders with corrections, cancellations and
returns, published in two different orders (upstream's, and shuffled) to two topic prefixes
and written by two tracker processes into two databases; the tables and the training data
are then compared. They must be identical: the newest version of an order wins, whatever
the arrival order (docs/operations.md, Order corrections, cancellations and returns).
"""

import asyncio
import hashlib
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all
from mgrecs.common import topics
from mgrecs.common.kafka import ensure_topics, make_producer
from mgrecs.common.schemas import OrderEvent, OrderLine, OrderStatus
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from mgrecs.store.databases import create_database
from mgrecs.store.order_reads import INTERACTIONS, INTERACTIONS_CSV
from mgrecs.store.schema import migrate_async

WAIT_SECONDS = 600.0
SNAPSHOT = {
    "orders": "SELECT order_id, customer_id, ordered_at, region, status, updated_at,"
    " content_hash FROM orders ORDER BY order_id",
    "order lines": "SELECT order_id, line_no, product_id, quantity, price FROM order_items"
    " ORDER BY order_id, line_no",
    "training data": f"SELECT * FROM ({INTERACTIONS}) t ORDER BY 1, 2, 4, 3",
    "export": INTERACTIONS_CSV,
}
"""What must be identical after the two deliveries, each as a query."""


def versions_of(count: int, seed: int = 15) -> tuple[list[OrderEvent], Counter[str]]:
    """`count` generated orders, a third of them revised once or twice (fewer, more or
    changed lines, cancelled, returned, one line returned), in the order upstream made them,
    and how many revisions of each kind."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    data = generate(seed=seed, customers=2_000, products=500, orders=count, anchor=now)
    kinds: Counter[str] = Counter()
    messages: list[OrderEvent] = []
    for order in data.orders[:count]:
        messages.append(order)
        lines = list(order.lines)
        for revision in range(rng.choice((0, 0, 1, 2))):
            kind = rng.choice(("fewer", "more", "quantity", "cancelled", "returned", "line"))
            kinds[kind] += 1
            status: OrderStatus = "placed"
            if kind in ("cancelled", "returned"):
                status = kind  # type: ignore[assignment]
            elif kind == "fewer" and len(lines) > 1:
                lines = lines[:-1]
            elif kind == "more":
                lines = [*lines, rng.choice(data.orders).lines[0]]
            elif kind == "quantity":
                lines = [
                    lines[0].model_copy(update={"quantity": lines[0].quantity + 1}),
                    *lines[1:],
                ]
            revised: list[OrderLine] = list(lines)
            if kind == "line":
                revised[0] = lines[0].model_copy(update={"status": "returned"})
            updated = min(order.ordered_at + timedelta(minutes=10 * (revision + 1)), now)
            messages.append(
                order.model_copy(update={"lines": revised, "status": status, "updated_at": updated})
            )
    return messages, kinds


async def _publish(settings: Settings, messages: list[OrderEvent]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = topics.topic(topics.ORDERS, settings)
        pending = [
            await producer.send(topic, m.model_dump_json().encode(), key=m.key) for m in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _consumed(settings: Settings, group: str) -> bool:
    """True once `group` committed every offset of the prefix's `orders` topic."""
    topic = topics.topic(topics.ORDERS, settings)
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_prefix}{group}",
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        await reader.topics()
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        ends = await reader.end_offsets(partitions)
        committed = [await reader.committed(tp) or 0 for tp in partitions]
        return all(c >= ends[tp] for tp, c in zip(partitions, committed, strict=True))
    finally:
        await reader.stop()


async def _digests(url: str) -> dict[str, tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for name, query in SNAPSHOT.items():
            rows = await conn.fetch(query)
            text = "\n".join(repr(tuple(row)) for row in rows)
            found[name] = (len(rows), hashlib.sha256(text.encode()).hexdigest())
        return found
    finally:
        await conn.close()


async def drill_corrections(server_url: str, base: Settings, count: int, logs: Path) -> str:
    """Deliver the versions twice, in two orders; one line saying what came out."""
    messages, kinds = versions_of(count)
    shuffled = list(messages)
    random.Random(2).shuffle(shuffled)
    runs: list[tuple[Settings, ServiceProcess]] = []
    try:
        for name, delivery in (("upstream", messages), ("shuffled", shuffled)):
            url = await create_database(server_url, f"corrections_{name}")
            await migrate_async(url)
            settings = base.model_copy(
                update={"database_url": url, "topic_prefix": f"c{uuid.uuid4().hex[:6]}-"}
            )
            await ensure_topics(settings)
            await _publish(settings, delivery)
            env = {
                "MGRECS_DATABASE_URL": url,
                "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
                "MGRECS_TRACKER_METRICS_PORT": str(free_port()),
                "MGRECS_LOG_LEVEL": "WARNING",
                "MGRECS_ENV": "development",  # pgserver's fixed password (see drill.py)
            }
            tracker = ServiceProcess(
                f"tracker-{name}",
                ["mgrecs-tracker", "--sink", "db"],
                env,
                logs / f"tracker-{name}.log",
            )
            tracker.start()
            runs.append((settings, tracker))
        deadline = time.monotonic() + WAIT_SECONDS
        for settings, tracker in runs:
            while not await _consumed(settings, "mgrecs-tracker-db"):
                if not tracker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"{tracker.name} did not consume its orders")
                await asyncio.sleep(1)
        one, two = [await _digests(settings.database_url) for settings, _ in runs]
    finally:
        stop_all([tracker for _, tracker in runs])
    verdicts = ", ".join(
        f"{name} {'identical' if one[name] == two[name] else 'DIFFERENT'} ({one[name][0]:,} rows)"
        for name in SNAPSHOT
    )
    revisions = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    return (
        f"corrections: {count:,} orders in {len(messages):,} versions ({revisions}) delivered "
        f"in upstream order and shuffled, each through a tracker into its own database: "
        f"{verdicts}"
    )
