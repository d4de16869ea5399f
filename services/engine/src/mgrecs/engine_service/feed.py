"""Real-time history shared by every engine replica through topic `engine-events`.

PutEvents publishes what it accepts (`MESSAGE_EVENTS` a message at most) and waits for the
broker to own it before answering
(`publish`), so an accepted event is never only in one process. Every replica follows the
whole topic (all partitions assigned, no consumer group: each one reads everything) and
folds each message into its `EventStore`; its own messages it already holds, and skips. A
replica starts reading at the served model's training time (`offsets_for_times`; from the
beginning without a model): what came before, the model learnt from PostgreSQL. It is ready
once it has read up to the end offsets it saw on start (`ready`).

Plain aiokafka clients (`kafka.make_producer`, `make_consumer`), not a FastStream subscriber
(`mgrecs.common.consume`): this is no consumer group acknowledging work but each replica
reading the whole log from a point in time (offsets by timestamp, seeks, end offsets for
readiness), which FastStream's subscribers do not offer. The topic is still declared in
`channels`, so the AsyncAPI document covers it.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import uuid4

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from mgrecs.common import topics
from mgrecs.common.engine_events import AcceptedEvent, AcceptedEvents
from mgrecs.common.kafka import make_consumer, make_producer
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.engine_service import metrics
from mgrecs.engine_service.events import EventStore, Line, collector_paused

RETRY_SECONDS = (0.5, 5.0)
"""First and longest wait between attempts to reach the broker."""
MESSAGE_EVENTS = 1_000
"""Events per message at most: a bulk request's 5,000 stay well under the broker's 1 MiB
message limit (an event is about 200 bytes)."""
FETCH_MS = 500
FETCH_WAIT_MS = 100
"""Longest a fetch waits on the broker for new messages: a broker that answers only then (the
embedded Tansu does) still brings another replica's events within it."""

log = get_logger(__name__)


class Unavailable(Exception):
    """The broker did not take the events (down, or slower than the publish timeout)."""


def encode(message_id: str, lines: Sequence[Line]) -> bytes:
    """An `AcceptedEvents` message, compact; members that are None written as null (orjson
    writes each `Line` as it is, no Python code per line)."""
    return orjson.dumps({"id": message_id, "events": lines})


_MEMBERS = frozenset(AcceptedEvent.model_fields)
_MAX_MESSAGE_ID = 64
_MAX_USER_ID = 256


def decode(value: bytes) -> list[Line]:
    """The lines of an `AcceptedEvents` message (ValidationError when it is not one)."""
    lines = decode_plain(value)
    if lines is not None:
        return lines
    message = AcceptedEvents.model_validate_json(value)
    return [
        Line(e.user_id, e.event_id, e.item_id, e.region, e.order_id, e.order_version)
        for e in message.events
    ]


def decode_plain(value: bytes) -> list[Line] | None:
    """The lines of a message as engines write it, read with orjson and plain checks (a
    replica follows every other replica's events); None when anything is unusual: then
    pydantic's `AcceptedEvents` reads it the same, or says what is wrong."""
    try:
        message = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(message) is not dict or message.keys() != {"id", "events"}:
        return None
    message_id, events = message["id"], message["events"]
    if type(message_id) is not str or not 0 < len(message_id) <= _MAX_MESSAGE_ID:
        return None
    if type(events) is not list:
        return None
    lines = []
    for event in events:
        if type(event) is not dict or not _MEMBERS.issuperset(event):
            return None
        user_id = event.get("user_id")
        if type(user_id) is not str or not 0 < len(user_id) <= _MAX_USER_ID:
            return None
        line = Line(
            user_id,
            event.get("event_id"),
            event.get("item_id"),
            event.get("region"),
            event.get("order_id"),
            event.get("order_version"),
        )
        for text in (line.event_id, line.item_id, line.region, line.order_id, line.order_version):
            if text is not None and type(text) is not str:
                return None
        lines.append(line)
    return lines


class Feed:
    """This replica's producer on, and follower of, `engine-events`."""

    def __init__(self, settings: Settings, events: EventStore) -> None:
        self._settings = settings
        self._events = events
        self._topic = topics.topic(topics.ENGINE_EVENTS, settings)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._own: set[str] = set()
        """Ids of the messages this process published and holds already."""
        self._ends: dict[TopicPartition, int] | None = None
        self.connected = asyncio.Event()
        """Set once PutEvents can publish."""
        self.caught_up = False
        self._problem = "not connected to the broker yet"

    async def publish(self, lines: Sequence[Line], at: int) -> None:
        """Put `lines` on the topic as accepted at `at` (epoch ms), once the broker owns them
        (acks=all); Unavailable when it does not within the publish timeout. Then the caller
        records them itself: following, this replica will skip the message."""
        producer = self._producer
        if producer is None:
            raise Unavailable(self._problem)
        chunks = {
            uuid4().hex: lines[start : start + MESSAGE_EVENTS]
            for start in range(0, len(lines), MESSAGE_EVENTS)
        }
        self._own.update(chunks)
        try:
            async with asyncio.timeout(self._settings.engine_publish_timeout_seconds):
                sent = [
                    await producer.send(
                        self._topic,
                        encode(message_id, chunk),
                        key=message_id.encode(),  # the follower skips its own unread
                        timestamp_ms=at,
                    )
                    for message_id, chunk in chunks.items()
                ]
                await asyncio.gather(*sent)
        except (KafkaError, TimeoutError) as exc:
            # Perhaps written after all: then this replica folds it in when it comes by.
            self._own.difference_update(chunks)
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc

    def ready(self) -> str:
        """`ok` once the history holds what the topic held when this replica started."""
        return "ok" if self.caught_up else self._problem

    async def run(self, trained_at: Callable[[], datetime | None]) -> None:
        """Connect (trying again while the broker is away), then follow until cancelled;
        `trained_at` says where reading starts. Should following fail, it starts over from
        there (what is read twice counts once)."""
        delay = RETRY_SECONDS[0]
        try:
            while True:
                try:
                    await self._connect(trained_at())
                    delay = RETRY_SECONDS[0]
                    await self._follow()
                except Exception as exc:  # noqa: BLE001 - stopping to follow would go unseen
                    self._problem = f"broker unreachable: {type(exc).__name__}: {exc}"
                    self.caught_up = False
                    log.warning("engine_events_connect_failed", error=repr(exc), retry_in=delay)
                    await self._close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_SECONDS[1])
        finally:
            await self._close()

    async def _connect(self, since: datetime | None) -> None:
        consumer = self._consumer = make_consumer(
            self._settings,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        await consumer.start()
        await consumer.topics()  # the cluster's metadata
        numbers = consumer.partitions_for_topic(self._topic)
        if not numbers:
            raise LookupError(f"topic {self._topic} does not exist (mgrecs create-topics)")
        partitions = [TopicPartition(self._topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            at = int(since.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, at))
            for partition in partitions:
                offset = found.get(partition)
                consumer.seek(partition, ends[partition] if offset is None else offset.offset)
        self._ends = ends
        producer = make_producer(self._settings)
        await producer.start()
        self._producer = producer  # publishing only now: the follower reads what it writes
        self.connected.set()
        self._problem = "reading engine-events back"
        log.info("engine_events_following", since=since.isoformat() if since else "beginning")
        await self._check_caught_up(consumer, ends)  # nothing to read back: ready at once

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None and self._ends is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=FETCH_MS)
            except KafkaError as exc:
                log.warning("engine_events_fetch_failed", error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS[0])
                continue
            for records in batches.values():
                for record in records:
                    self._fold(record.key, record.value, record.timestamp)
            if not self.caught_up:
                await self._check_caught_up(consumer, self._ends)

    async def _check_caught_up(
        self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
    ) -> None:
        for partition, end in ends.items():
            if await consumer.position(partition) < end:
                return
        self.caught_up = True
        self._problem = "ok"
        log.info("engine_events_caught_up", users=self._events.users)

    def _fold(self, key: bytes | None, value: bytes | None, at: int) -> None:
        """Fold in another replica's message; this replica's own (its id is the record's key)
        it holds already and skips without reading."""
        own = key.decode(errors="replace") if key is not None else None
        if own in self._own:
            self._own.discard(own)
            metrics.FOLLOWED.labels("own").inc()
            return
        with collector_paused():
            try:
                lines = decode(value or b"")
            except ValidationError as exc:  # only engines write here: a bug, not a reason to stop
                metrics.FOLLOWED.labels("unreadable").inc()
                log.error("engine_event_unreadable", error=str(exc)[:500])
                return
            self._events.follow(lines, at)
        metrics.FOLLOWED.labels("folded").inc()

    async def _close(self) -> None:
        producer, consumer = self._producer, self._consumer
        self._producer = self._consumer = None
        with contextlib.suppress(Exception):  # stopping: what failed no longer matters
            if producer is not None:
                await producer.stop()
        with contextlib.suppress(Exception):
            if consumer is not None:
                await consumer.stop()
