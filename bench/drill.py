"""`make drill`: the production-safety drills at full size, one printed line each.

Starts the embedded stack the way a deployment runs it (PostgreSQL from pgserver, the Tansu
broker, every service its own process, each tracker sink its own process), then:

1. poison: bad records (not JSON, not UTF-8, absurd dates, NaN, bidi ids, wrong types, deep
   nesting, no value) spread over `orders`, `feedback` and `schedule-ticks`, interleaved with
   good order lines: processes that died, good lines in PostgreSQL and in the engine (once
   each), bad records in their dead-letter topic with a reason;
2. restarts: PostgreSQL restarted, the broker restarted and the engine killed, each while
   orders stream in: lines lost and doubled, in PostgreSQL and in the engine (on a stack of
   its own whose broker keeps its topics in an in-memory S3 server, so that its restart is
   real and loses nothing a Kafka restart would keep);
3. stale: a model trained and the cache filled, then no infer for longer than two TTLs: the
   api's readiness, the stale marks, the region page (and after `cache invalidate --all`);
4. http: generated requests against every HTTP operation of api, ingest and engine: 5xx;
5. corrections: the same orders with corrections and cancellations delivered in two
   different orders into two databases: tables and training data compared.

The fast tests of each mechanism are in `make test` (tests/common/test_poison.py,
tests/system/test_poison_*.py, tests/tracker/test_tracker_faults.py,
tests/system/test_broker_restart.py, tests/batch/test_cache_generations.py,
tests/store/test_order_versions.py).

Usage: python bench/drill.py [--lines N] [--bad N] [--requests N] [--restart-lines N]
       [--ttl-seconds S] [--corrections N] [--only NAME ...]
"""

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from hostile import hand_picked, hostile_payload

from mgrecs.cli.embedded import EmbeddedBroker, EmbeddedPostgres, ObjectStore, free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common import topics
from mgrecs.common.channels import publish_tick
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.kafka import ensure_topics, make_producer
from mgrecs.common.personalize import signed_headers
from mgrecs.common.schemas import OrderEvent, ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from mgrecs.store.databases import create_database
from mgrecs.store.schema import migrate_async

WAIT_SECONDS = 900.0
STREAM_SECONDS = 60.0
"""How long the restart drill's orders take to arrive (the faults fall inside)."""
BAD_SHARES = {topics.ORDERS: 0.7, topics.FEEDBACK: 0.2, topics.SCHEDULE_TICKS: 0.1}
"""How the bad records are spread over the topics."""
DLQ_OF = {
    topics.ORDERS: topics.ORDERS_DLQ,
    topics.FEEDBACK: topics.FEEDBACK_DLQ,
    topics.SCHEDULE_TICKS: topics.SCHEDULE_TICKS_DLQ,
}
FEEDBACK_EXAMPLE = FeedbackEvent.model_json_schema()["examples"][0]
"""The schema's own example: the mutations start from a valid event."""
TICK_EXAMPLE = {"schema_version": 1, "tick_id": "t1", "kind": "refresh"}


ALL_SERVICES = ("engine", "db", "events", "feedback", "batch", "api", "ingest")


def say(line: str) -> None:
    print(line, flush=True)


# --- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    """The embedded infrastructure and the named services, each its own process. A durable
    stack's broker keeps its topics in an S3 server (moto), so it can be restarted; it is
    slower (the S3 server's CPU), so only the restart drill uses one."""

    root: Path
    ttl_seconds: float
    names: tuple[str, ...] = ALL_SERVICES
    durable: bool = False
    postgres: EmbeddedPostgres = field(init=False)
    store: ObjectStore | None = None
    broker: EmbeddedBroker = field(init=False)
    settings: Settings = field(init=False)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres = EmbeddedPostgres(self.root / "pg").start()
        self.store = ObjectStore().start() if self.durable else None
        self.broker = EmbeddedBroker(log_path=self.root / "broker.log", store=self.store).start()
        url = await create_database(self.postgres.url, "mgrecs")
        await migrate_async(url)
        self.keys = {name: secrets.token_urlsafe(18) for name in ("read", "admin", "ingest")}
        self.keys["engine_secret"] = secrets.token_urlsafe(24)
        self.ports = {
            name: free_port()
            for name in ("engine", "api", "ingest", "db", "events", "feedback", "batch")
        }
        self.settings = Settings(
            database_url=url,
            kafka_bootstrap=self.broker.bootstrap,
            engine_port=self.ports["engine"],
            api_port=self.ports["api"],
            ingest_port=self.ports["ingest"],
            personalize_endpoint_url=f"http://127.0.0.1:{self.ports['engine']}",
            aws_secret_access_key=self.keys["engine_secret"],
            engine_credentials=f"mgrecs:{self.keys['engine_secret']}",
        )
        await ensure_topics(self.settings)
        for name in self.names:
            self.start_service(name)
        for name in self.services:
            await asyncio.to_thread(wait_healthy, self.health_url(name), self.services[name])

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            "MGRECS_DATABASE_URL": s.database_url,
            "MGRECS_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "MGRECS_ENGINE_PORT": str(s.engine_port),
            "MGRECS_API_PORT": str(s.api_port),
            "MGRECS_INGEST_PORT": str(s.ingest_port),
            "MGRECS_PERSONALIZE_ENDPOINT_URL": s.personalize_endpoint_url or "",
            "MGRECS_AWS_SECRET_ACCESS_KEY": s.aws_secret_access_key,
            "MGRECS_ENGINE_CREDENTIALS": s.engine_credentials,
            "MGRECS_API_READ_KEYS": self.keys["read"],
            "MGRECS_API_ADMIN_KEYS": self.keys["admin"],
            "MGRECS_INGEST_API_KEYS": self.keys["ingest"],
            "MGRECS_ARTIFACT_DIR": str(self.root / "artifacts"),
            "MGRECS_ENGINE_MODEL_POLL_SECONDS": "1",
            "MGRECS_CACHE_TTL_HOURS": str(self.ttl_seconds / 3600),
            "MGRECS_TRAIN_BUDGET_SECONDS": "20",
            "MGRECS_LOG_LEVEL": "WARNING",
            # The embedded PostgreSQL has pgserver's fixed password, which production refuses;
            # every other secret is a real random one, and reads need the keys all the same.
            "MGRECS_ENV": "development",
        }

    def start_service(self, name: str) -> ServiceProcess:
        commands = {
            "engine": ["mgrecs-engine"],
            "db": ["mgrecs-tracker", "--sink", "db"],
            "events": ["mgrecs-tracker", "--sink", "events"],
            "feedback": ["mgrecs-tracker", "--sink", "feedback"],
            "batch": ["mgrecs-batch"],
            "api": ["mgrecs-api"],
            "ingest": ["mgrecs-ingest"],
        }
        env = self.env()
        if name in ("db", "events", "feedback"):
            env["MGRECS_TRACKER_METRICS_PORT"] = str(self.ports[name])
        if name == "batch":
            env["MGRECS_BATCH_METRICS_PORT"] = str(self.ports[name])
        process = ServiceProcess(name, commands[name], env, self.root / "logs" / f"{name}.log")
        process.start()
        self.services[name] = process
        return process

    def health_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/healthz"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def dead(self) -> list[str]:
        return [name for name, process in self.services.items() if not process.alive()]

    def stop(self) -> None:
        stop_all(list(self.services.values()))
        self.broker.stop()
        if self.store is not None:
            self.store.stop()
        self.postgres.wipe()


# --- shared measurements --------------------------------------------------------------------


async def fetch_value(stack: Stack, sql: str) -> Any:
    """One value over a fresh connection (the server restarts during the drills)."""
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def lines_digest(stack: Stack) -> tuple[int, str]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT order_id, line_no, product_id FROM order_items ORDER BY 1, 2"
        )
    finally:
        await conn.close()
    text = "\n".join(f"{r[0]}\t{r[1]}\t{r[2]}" for r in rows)
    return len(rows), hashlib.sha256(text.encode()).hexdigest()


def expected_digest(orders: list[OrderEvent]) -> tuple[int, str]:
    rows = sorted(
        (o.order_id, n, line.product_id) for o in orders for n, line in enumerate(o.lines, 1)
    )
    text = "\n".join(f"{o}\t{n}\t{p}" for o, n, p in rows)
    return len(rows), hashlib.sha256(text.encode()).hexdigest()


async def engine_known_lines(stack: Stack) -> int:
    """Lines the engine holds: received through its PutEvents plus read back from
    `engine-events` (on its start: what the killed process had accepted)."""
    url = f"{stack.url('engine')}/stats"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url, headers=signed_headers(stack.settings, "GET", url))
    stats = response.json()
    return int(stats["events_received"]) + int(stats["events_followed"])


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` now (all partitions, up to their end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            records += [record for batch in batches.values() for record in batch]
        return records
    finally:
        await consumer.stop()


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], stack: Stack) -> float:
    """Seconds until `check` holds; fails when a service died or after WAIT_SECONDS."""
    started = time.monotonic()
    while not await check():
        if dead := stack.dead():
            raise RuntimeError(f"{what}: {', '.join(dead)} died")
        if time.monotonic() - started > WAIT_SECONDS:
            raise TimeoutError(f"{what}: not within {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(1.0)
    return time.monotonic() - started


def orders_of(lines: int, seed: int, prefix: str) -> list[OrderEvent]:
    """Generated orders holding exactly `lines` lines, their ids prefixed."""
    data = generate(
        seed=seed, customers=8_000, products=1_500, orders=lines // 2, anchor=datetime.now(UTC)
    )
    orders: list[OrderEvent] = []
    total = 0
    for order in data.orders:
        take = min(len(order.lines), lines - total)
        orders.append(
            order.model_copy(
                update={"order_id": prefix + order.order_id, "lines": order.lines[:take]}
            )
        )
        total += take
        if total == lines:
            return orders
    raise RuntimeError(f"generated only {total} lines")


Message = tuple[str, bytes | None, bytes | None]
"""Logical topic, key, value."""


async def publish(stack: Stack, messages: list[Message], per_second: float = 0.0) -> None:
    """Send `messages` in order (at `per_second` when > 0), each acknowledged; a send that
    fails while the broker restarts is sent again (a resent order changes nothing)."""
    producer = make_producer(stack.settings)
    await producer.start()
    try:
        chunk = 500
        started = time.monotonic()
        for start in range(0, len(messages), chunk):
            part = messages[start : start + chunk]
            while True:
                try:
                    pending = [
                        await producer.send(topics.topic(t, stack.settings), value=v, key=k)
                        for t, k, v in part
                    ]
                    await asyncio.gather(*pending)
                    break
                except KafkaError:
                    await asyncio.sleep(1.0)
            if per_second > 0:
                due = started + (start + len(part)) / per_second
                await asyncio.sleep(max(0.0, due - time.monotonic()))
    finally:
        await producer.stop()


def order_messages(orders: list[OrderEvent]) -> list[Message]:
    return [(topics.ORDERS, o.key, o.model_dump_json().encode()) for o in orders]


# --- 1. poison ------------------------------------------------------------------------------


def bad_records(count: int, rng: random.Random, valid_order: dict[str, Any]) -> list[Message]:
    """`count` records no schema accepts, spread over the topics by BAD_SHARES."""
    valid_order = {**valid_order, "order_id": "X-hostile"}  # never one of the good orders
    models = {topics.ORDERS: OrderEvent, topics.FEEDBACK: FeedbackEvent}
    models[topics.SCHEDULE_TICKS] = ScheduleTick  # type: ignore[assignment]
    examples = {
        topics.ORDERS: valid_order,
        topics.FEEDBACK: FEEDBACK_EXAMPLE,
        topics.SCHEDULE_TICKS: TICK_EXAMPLE,
    }

    def refused(topic: str, value: bytes | None) -> bool:
        try:
            models[topic].model_validate_json(value or b"")
        except Exception:  # noqa: BLE001 - refused in any way: a bad record
            return True
        return False  # a mutation that left it valid: not a bad record

    records: list[Message] = [
        (topics.ORDERS, b"C00001", value)
        for value in hand_picked(valid_order)
        if refused(topics.ORDERS, value)
    ]
    for topic, share in BAD_SHARES.items():
        wanted = round(count * share) if topic != topics.SCHEDULE_TICKS else count - len(records)
        made = len(records) if topic == topics.ORDERS else 0
        while made < wanted:
            value = hostile_payload(examples[topic], rng)
            if not refused(topic, value):
                continue
            key = rng.choice([None, b"C00001", rng.randbytes(8)])
            if value is None and key is None:
                key = b"tombstone"  # Kafka wants a key or a value
            records.append((topic, key, value))
            made += 1
    return records


async def drill_poison(stack: Stack, lines: int, bad: int) -> None:
    rng = random.Random(15)
    good = orders_of(lines, seed=151, prefix="P-")
    bad_messages = bad_records(bad, rng, json.loads(good[0].model_dump_json()))
    messages = order_messages(good)
    for message in bad_messages:
        messages.insert(rng.randrange(len(messages) + 1), message)
    started = time.monotonic()
    await publish(stack, messages)
    want = Counter(topic for topic, _, _ in bad_messages)

    async def letters() -> Counter[str]:
        found: Counter[str] = Counter()
        for topic, dlq in DLQ_OF.items():
            for record in await read_topic(stack.settings.kafka_bootstrap, dlq):
                if json.loads(record.value).get("reason"):
                    found[topic] += 1
        return found

    async def done() -> bool:
        if await fetch_value(stack, "SELECT count(*) FROM order_items") < lines:
            return False
        if await engine_known_lines(stack) < lines:
            return False
        found = await letters()
        return all(found[topic] >= n for topic, n in want.items())

    await wait_for("poison drill", done, stack)
    seconds = time.monotonic() - started
    await asyncio.sleep(3)  # anything still in flight would show now
    found = await letters()
    landed = await lines_digest(stack)
    exact = landed == expected_digest(good)
    say(
        f"poison: {bad:,} bad records ({', '.join(f'{t} {n:,}' for t, n in want.items())}) among "
        f"{lines:,} good lines: tracker and batch processes that died {len(stack.dead())}; "
        f"good lines in PostgreSQL {landed[0]:,} of {lines:,} "
        f"({'each once' if exact else 'NOT exact'}), "
        f"in the engine {await engine_known_lines(stack):,} of {lines:,}; "
        f"dead letters with a reason {sum(found.values()):,} of {bad:,} ({seconds:.0f} s)"
    )


# --- 2. restarts ----------------------------------------------------------------------------


async def drill_restarts(root: Path, lines: int) -> None:
    """On a stack of its own (a durable broker; the tracker's sinks and the engine)."""
    stack = Stack(root, ttl_seconds=3600, names=("engine", "db", "events"), durable=True)
    try:
        await stack.start()
        await _restarts(stack, lines)
    finally:
        stack.stop()


async def _restarts(stack: Stack, lines: int) -> None:
    orders = orders_of(lines, seed=152, prefix="R-")
    per_second = len(orders) / STREAM_SECONDS
    publisher = asyncio.create_task(publish(stack, order_messages(orders), per_second))
    events: list[str] = []
    await asyncio.sleep(STREAM_SECONDS * 0.2)
    stack.postgres.stop()
    await asyncio.sleep(5)
    stack.postgres.start()
    events.append("PostgreSQL down 5 s")
    await asyncio.sleep(STREAM_SECONDS * 0.2)
    stack.broker.restart()
    events.append("broker restarted")
    await asyncio.sleep(STREAM_SECONDS * 0.2)
    engine = stack.services["engine"]
    assert engine.process is not None
    engine.process.kill()
    engine.process.wait()
    await asyncio.sleep(3)
    stack.start_service("engine")
    await asyncio.to_thread(wait_healthy, stack.health_url("engine"), stack.services["engine"])
    events.append("engine killed (-9) and started")
    await publisher
    everything = orders
    total = sum(len(o.lines) for o in everything)

    async def done() -> bool:
        return (
            await fetch_value(stack, "SELECT count(*) FROM order_items") >= total
            and await engine_known_lines(stack) >= total
        )

    await wait_for("restart drill", done, stack)
    await asyncio.sleep(3)
    landed = await lines_digest(stack)
    expected = expected_digest(everything)
    in_engine = await engine_known_lines(stack)
    say(
        f"restarts: {lines:,} lines streamed while {', '.join(events)}: "
        f"PostgreSQL lost {max(expected[0] - landed[0], 0):,}, doubled "
        f"{max(landed[0] - expected[0], 0):,} "
        f"({'identical rows' if landed == expected else 'ROWS DIFFER'}); "
        f"engine lost {max(total - in_engine, 0):,}, doubled {max(in_engine - total, 0):,}"
    )


# --- 3. stale -------------------------------------------------------------------------------


async def tick_done(stack: Stack, tick_id: str) -> bool:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        detail = await conn.fetchval(
            "SELECT detail FROM processed_ticks WHERE tick_id = $1 AND finished_at IS NOT NULL",
            tick_id,
        )
    finally:
        await conn.close()
    if detail is not None and json.loads(detail).get("status") == "failed":
        raise RuntimeError(f"batch job failed: {detail}")
    return detail is not None


async def train_and_fill(stack: Stack) -> None:
    for kind in ("retrain", "infer"):
        tick = await publish_tick(stack.settings, kind)  # type: ignore[arg-type]
        await wait_for(f"batch {kind}", lambda t=tick.tick_id: tick_done(stack, t), stack)


async def drill_stale(stack: Stack, ttl: float) -> None:
    await train_and_fill(stack)
    customer = await fetch_value(stack, "SELECT user_id FROM offline_user_recommendations LIMIT 1")
    region = await fetch_value(
        stack, "SELECT region FROM customers WHERE region IS NOT NULL LIMIT 1"
    )
    headers = {"X-API-Key": stack.keys["read"]}
    api = stack.url("api")
    filled = time.monotonic()
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        while time.monotonic() - filled < 2.5 * ttl:
            ready = await client.get(f"{api}/readyz")
            counts["probes"] += 1
            counts["not ready"] += ready.status_code != 200
            user = await client.get(f"{api}/v1/users/{customer}/recommendations")
            page = await client.get(f"{api}/v1/regions/{region}/recommendations")
            counts["region pages"] += 1
            counts["empty pages"] += page.status_code != 200 or not page.json().get("items")
            counts["5xx"] += user.status_code >= 500 or page.status_code >= 500
            if time.monotonic() - filled > ttl * 1.2:  # clearly past the TTL
                counts["past TTL"] += 2
                for answer in (user, page):
                    body = answer.json() if answer.status_code == 200 else {}
                    counts["marked stale"] += bool(body.get("stale")) or body.get("source") in (
                        "realtime",
                        "popular",
                    )
            await asyncio.sleep(0.5)
        cli = ServiceProcess(
            "invalidate",
            ["mgrecs", "cache", "invalidate", "--all"],
            stack.env(),
            stack.root / "logs" / "invalidate.log",
        )
        cli.start()
        assert cli.process is not None
        await asyncio.to_thread(cli.process.wait)
        after: Counter[str] = Counter()
        for _ in range(10):
            page = await client.get(f"{api}/v1/regions/{region}/recommendations")
            after["empty"] += page.status_code != 200 or not page.json().get("items")
            after[str(page.json().get("source", "?")) if page.status_code == 200 else "error"] += 1
            await asyncio.sleep(0.3)
    say(
        f"stale: no infer for {2.5 * ttl:.0f} s after the cache was filled (TTL {ttl:.0f} s): "
        f"api not ready in {counts['not ready']} of {counts['probes']} probes; answers past the "
        f"TTL marked stale or from a fallback {counts['marked stale']} of {counts['past TTL']}; "
        f"region page empty {counts['empty pages']} of {counts['region pages']}, "
        f"5xx {counts['5xx']}; "
        f"after cache invalidate --all: region page empty {after['empty']} of 10"
    )


# --- 4. http --------------------------------------------------------------------------------


async def drill_http(stack: Stack, per_operation: int) -> None:
    from http_fuzz import fuzz_service

    rng = random.Random(4)
    ids = {
        "customers": [
            r for r in await fetch_all(stack, "SELECT customer_id FROM customers LIMIT 50")
        ],
        "products": [r for r in await fetch_all(stack, "SELECT product_id FROM products LIMIT 50")],
        "regions": [
            r for r in await fetch_all(stack, "SELECT DISTINCT region FROM customers LIMIT 10")
        ],
    }
    results = []
    for service, key in (
        ("api", stack.keys["admin"]),
        ("ingest", stack.keys["ingest"]),
        ("engine", stack.keys["engine_secret"]),
    ):
        results.append(
            await fuzz_service(service, stack.url(service), key, ids, per_operation, rng)
        )
    operations = sum(r.operations for r in results)
    requests = sum(r.requests for r in results)
    unsent = sum(r.unsent for r in results)
    errors = sum(r.server_errors for r in results)
    say(
        f"http: {per_operation:,} generated requests per operation, {operations} operations "
        f"({', '.join(f'{r.service} {r.operations}' for r in results)}), {requests:,} requests "
        f"answered ({unsent} the client would not send): 5xx {errors}"
    )
    for result in results:
        for where, count in result.where.most_common():
            say(f"  5xx ({result.service}): {where} x{count}")
        for sample in result.samples:
            say(f"  5xx sample ({result.service}): {sample}")


async def fetch_all(stack: Stack, sql: str) -> list[Any]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return [row[0] for row in await conn.fetch(sql)]
    finally:
        await conn.close()


# --- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="mgdrill"))
    stack = Stack(root, args.ttl_seconds)
    say(f"drill: logs in {root / 'logs'}")
    try:
        await stack.start()
        wanted = set(args.only or ("poison", "restarts", "stale", "http", "corrections"))
        good = orders_of(args.lines, seed=151, prefix="P-")
        if "poison" in wanted:
            await drill_poison(stack, args.lines, args.bad)
        else:
            await publish(stack, order_messages(good))
        if "restarts" in wanted:
            await drill_restarts(root / "restarts", args.restart_lines)
        if "stale" in wanted:
            await drill_stale(stack, args.ttl_seconds)
        if "http" in wanted:
            await drill_http(stack, args.requests)
        if "corrections" in wanted:
            from corrections import drill_corrections

            say(
                await drill_corrections(
                    stack.postgres.url, stack.settings, args.corrections, stack.root / "logs"
                )
            )
        return 0
    except (RuntimeError, TimeoutError) as error:
        say(f"drill failed: {error}")
        for name, process in stack.services.items():
            say(f"--- {name} ({process.log_path})\n{process.log_tail(10)}")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--bad", type=int, default=10_000)
    parser.add_argument("--restart-lines", type=int, default=30_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--ttl-seconds", type=float, default=20.0)
    parser.add_argument("--corrections", type=int, default=1_000)
    parser.add_argument("--only", nargs="*", help="poison restarts stale http corrections")
    sys.exit(asyncio.run(main(parser.parse_args())))
