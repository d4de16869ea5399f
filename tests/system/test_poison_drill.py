"""The poison drill's mechanism, small: malformed and absurd records interleaved with good
ones on `orders`, `feedback` and `schedule-ticks` (and bad shard tasks on `infer-shards`),
read by the tracker's sinks and the batch worker on the real broker and database. No worker
dies; every good line is in PostgreSQL (and forwarded to PutEvents) once; every bad record is
in its dead-letter topic with a reason and its exact bytes. `make drill` runs the same at
full size."""

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from mgrecs.batch.worker import BatchWorker
from mgrecs.common import topics
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.schemas import DeadLetter, ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from mgrecs.tracker.feedback_sink import FeedbackSink
from support.fake_put_events import FakePutEvents
from support.helpers import eventually, read_topic, serve
from support.orders_topic import caught_up

NOW = datetime.now(UTC)
Poison = list[tuple[bytes, bytes | None]]
"""(key, value) of records no consumer can use; the key names the case."""


def _mutated(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> bytes:
    copy = json.loads(json.dumps(document))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return json.dumps(copy).encode()


def poison(
    valid: dict[str, Any], time: tuple[Any, ...], number: tuple[Any, ...], id_: str
) -> Poison:
    """Every kind of bad record the drill sends, built around a `valid` document: `time`,
    `number` and `id_` say where its timestamp, a number and an id are."""
    deep = 5_000
    cases: dict[str, bytes | None] = {
        "not-json": b"{this is not json",
        "not-utf8": b"\xff\xfe\x00{\x80garbage",
        "deep": b"[" * deep + b"]" * deep,
        "deep-object": b'{"a":' * deep + b"1" + b"}" * deep,
        "year-9999": _mutated(valid, time, "9999-12-31T23:00:00-05:00"),
        "year-1": _mutated(valid, time, "0001-01-01T00:00:00+01:00"),
        "before-2000": _mutated(valid, time, "1999-12-31T23:59:59Z"),
        "next-year": _mutated(valid, time, (NOW + timedelta(days=365)).isoformat()),
        "nan": _mutated(valid, number, float("nan")),
        "infinity": _mutated(valid, number, float("inf")),
        "huge": _mutated(valid, number, 10**400),
        "bidi-id": _mutated(valid, (id_,), "evil\u202egpj.exe"),
        "zero-width-id": _mutated(valid, (id_,), "C\u200b0001"),
        "control-id": _mutated(valid, (id_,), "C\x1b[31m"),
        "wrong-type": _mutated(valid, (id_,), {"nested": [1, 2]}),
        "null-document": b"null",
        "array": b"[1, 2, 3]",
        "empty": b"",
        "tombstone": None,
    }
    return [(name.encode(), value) for name, value in cases.items()]


async def publish(
    settings: Settings, topic: str, records: list[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:  # one at a time: each its own batch and offset
            await producer.send_and_wait(topics.topic(topic, settings), value, key=key)
    finally:
        await producer.stop()


def interleaved(good: list[tuple[bytes | None, bytes]], bad: Poison) -> list[Any]:
    mixed: list[Any] = []
    for index in range(max(len(good), len(bad))):
        mixed += good[index : index + 1] + bad[index : index + 1]
    return mixed


async def letters(settings: Settings, dlq: str) -> dict[str, DeadLetter]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(dlq, settings))
    parsed = [DeadLetter.model_validate_json(record.value) for record in records]
    by_key = {str(letter.key): letter for letter in parsed}
    assert len(by_key) == len(parsed), "a record was dead-lettered twice"
    return by_key


def assert_all_dead_lettered(found: dict[str, DeadLetter], bad: Poison, topic: str) -> None:
    """Each bad record once, with a reason, its source and its exact bytes."""
    assert set(found) == {key.decode() for key, _ in bad}
    for key, value in bad:
        letter = found[key.decode()]
        assert letter.reason, key
        assert letter.source_topic.endswith(topic)
        payload = (
            base64.b64decode(letter.payload)
            if letter.payload_encoding == "base64"
            else letter.payload.encode()
        )
        assert payload == (value or b""), key


@asynccontextmanager
async def all_running(*workers: Any) -> AsyncIterator[list["asyncio.Task[None]"]]:
    """Run the workers; stop them at the end (their tasks are yielded, to see none died)."""
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield tasks
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def test_poison_is_dead_lettered_and_every_good_line_lands_once(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    orders = generate(seed=5, customers=20, products=25, orders=40, anchor=NOW).orders
    order_example = json.loads(orders[0].model_dump_json())
    bad_orders = poison(order_example, ("ordered_at",), ("lines", 0, "price"), "order_id")
    await publish(
        settings,
        topics.ORDERS,
        interleaved([(o.key, o.model_dump_json().encode()) for o in orders], bad_orders),
    )

    feedback = [
        FeedbackEvent(
            customer_id=o.customer.customer_id,
            product_id=o.lines[0].product_id,
            kind="purchase",
            occurred_at=o.ordered_at,
            revenue=o.lines[0].price,
        )
        for o in orders[:15]
    ]
    feedback_example = json.loads(feedback[0].model_dump_json())
    bad_feedback = poison(feedback_example, ("occurred_at",), ("revenue",), "customer_id")
    await publish(
        settings,
        topics.FEEDBACK,
        interleaved([(None, event.model_dump_json().encode()) for event in feedback], bad_feedback),
    )

    marker = ScheduleTick(kind="infer", tick_id="after-the-poison")
    tick_example = {"kind": "infer", "tick_id": "t-1", "requested_at": NOW.isoformat()}
    bad_ticks = poison(tick_example, ("requested_at",), ("kind",), "tick_id")
    await publish(
        settings, topics.SCHEDULE_TICKS, [*bad_ticks, (None, marker.model_dump_json().encode())]
    )

    shard_example = {"generation": 1, "shard": 0, "shards": 2}
    bad_shards = poison(shard_example, ("generation",), ("shards",), "shard")
    await publish(settings, topics.INFER_SHARDS, bad_shards)

    fake_engine = FakePutEvents(failures=0)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve(fake_engine.app, settings.engine_port))
        tasks = await stack.enter_async_context(
            all_running(
                DbSink(settings),
                EventsSink(settings),
                FeedbackSink(settings),
                BatchWorker(settings),
            )
        )
        for group in (DbSink.group, EventsSink.group):
            await eventually(lambda group=group: caught_up(settings, group), timeout=60)
        await eventually(
            lambda: pool.fetchval(
                "SELECT finished_at IS NOT NULL FROM processed_ticks WHERE tick_id = $1",
                marker.tick_id,
            ),
            timeout=60,
        )
        await eventually(
            lambda: pool.fetchval("SELECT count(*) = $1 FROM feedback_events", len(feedback))
        )
        assert not [task for task in tasks if task.done()], "a worker died"

        lines = await pool.fetch("SELECT order_id, line_no FROM order_items")
        assert sorted((r["order_id"], r["line_no"]) for r in lines) == sorted(
            (o.order_id, n) for o in orders for n in range(1, len(o.lines) + 1)
        )
        assert await pool.fetchval("SELECT count(*) FROM orders") == len(orders)
        forwarded = Counter(
            event["eventId"] for call in fake_engine.calls for event in call["eventList"]
        )
        assert set(forwarded.values()) == {1}
        assert len(forwarded) == len(lines)
        stored = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM feedback_events")}
        assert stored == {event.event_id for event in feedback}

        assert_all_dead_lettered(
            await letters(settings, topics.ORDERS_DLQ), bad_orders, topics.ORDERS
        )
        await eventually(lambda: _count(settings, topics.FEEDBACK_DLQ, len(bad_feedback)))
        assert_all_dead_lettered(
            await letters(settings, topics.FEEDBACK_DLQ), bad_feedback, topics.FEEDBACK
        )
        assert_all_dead_lettered(
            await letters(settings, topics.SCHEDULE_TICKS_DLQ), bad_ticks, topics.SCHEDULE_TICKS
        )
        await eventually(lambda: _count(settings, topics.INFER_SHARDS_DLQ, len(bad_shards)))
        assert_all_dead_lettered(
            await letters(settings, topics.INFER_SHARDS_DLQ), bad_shards, topics.INFER_SHARDS
        )
        assert not [task for task in tasks if task.done()], "a worker died"


async def _count(settings: Settings, dlq: str, expected: int) -> bool:
    return len(await read_topic(settings.kafka_bootstrap, topics.topic(dlq, settings))) >= expected
