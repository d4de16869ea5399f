"""Who reads and who writes each topic, declared once on FastStream brokers.

Every consumer declares its subscriber and its dead-letter publisher through `subscribe` and
`dead_letters`, every producer of a topic is named in `PRODUCERS`, and the AsyncAPI document
(`asyncapi_broker`) is generated from these same declarations: it covers every topic
(`topics.ALL_TOPICS`) and cannot drift from the code.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.kafka.subscriber.usecase import LogicSubscriber
from pydantic import BaseModel

from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.consume import make_broker, raw_body
from mgrecs.common.engine_events import AcceptedEvents
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.schemas import DeadLetter, InferShard, OrderEvent, ScheduleTick, TickKind
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings


@dataclass(frozen=True)
class Consumer:
    """A consumer group: the topic it reads, what it does with each message, and where the
    messages it cannot read go."""

    group: str
    topic: str
    message: type[BaseModel]
    description: str
    dlq: str
    dlq_description: str


@dataclass(frozen=True)
class Producer:
    """A topic and who publishes it."""

    topic: str
    message: type[BaseModel]
    description: str


TRACKER_DB = Consumer(
    topics.TRACKER_DB_GROUP,
    topics.ORDERS,
    OrderEvent,
    "The tracker writes each valid order into PostgreSQL, then acknowledges the batch.",
    topics.ORDERS_DLQ,
    "Orders no consumer could parse or validate, with the reason.",
)
TRACKER_EVENTS = Consumer(
    topics.TRACKER_EVENTS_GROUP,
    topics.ORDERS,
    OrderEvent,
    "The tracker forwards each valid order's lines to PutEvents (the engine), then "
    "acknowledges the batch.",
    topics.ORDERS_EVENTS_DLQ,
    "Order lines PutEvents did not take after the bounded attempts, or refused.",
)
TRACKER_FEEDBACK = Consumer(
    topics.TRACKER_FEEDBACK_GROUP,
    topics.FEEDBACK,
    FeedbackEvent,
    "The tracker writes each valid feedback event into PostgreSQL, then acknowledges the batch.",
    topics.FEEDBACK_DLQ,
    "Feedback events no consumer could parse or validate, with the reason.",
)
TRACKER_PRODUCTS = Consumer(
    topics.TRACKER_PRODUCTS_GROUP,
    topics.PRODUCTS,
    ProductEvent,
    "The tracker writes each valid catalogue record into PostgreSQL (a version older than "
    "the stored one changes nothing), then acknowledges the batch.",
    topics.PRODUCTS_DLQ,
    "Catalogue records no consumer could parse or validate, with the reason.",
)
TRACKER_SERVED = Consumer(
    topics.TRACKER_SERVED_GROUP,
    topics.SERVED,
    ServedList,
    "The tracker writes each valid served list into PostgreSQL (table `served`, a partition "
    "per day; a redelivered one changes nothing), then acknowledges the batch.",
    topics.SERVED_DLQ,
    "Served lists no consumer could parse or validate, with the reason.",
)
BATCH_TICKS = Consumer(
    topics.BATCH_GROUP,
    topics.SCHEDULE_TICKS,
    ScheduleTick,
    "The batch worker runs the job each tick asks for, once; acknowledged once the job is "
    "recorded.",
    topics.SCHEDULE_TICKS_DLQ,
    "Schedule ticks the batch worker could not read, with the reason.",
)
BATCH_SHARDS = Consumer(
    topics.BATCH_SHARDS_GROUP,
    topics.INFER_SHARDS,
    InferShard,
    "Batch workers score and write one shard of an infer run each; acknowledged once it is "
    "written.",
    topics.INFER_SHARDS_DLQ,
    "Shard tasks the batch worker could not read, with the reason.",
)
CONSUMERS = (
    TRACKER_DB,
    TRACKER_EVENTS,
    TRACKER_FEEDBACK,
    TRACKER_PRODUCTS,
    TRACKER_SERVED,
    BATCH_TICKS,
    BATCH_SHARDS,
)

ORDERS = Producer(
    topics.ORDERS,
    OrderEvent,
    "Orders, keyed by customer id, from upstream teams and the ingest service. Consumed by "
    "the mgrecs tracker.",
)
PRODUCTS = Producer(
    topics.PRODUCTS,
    ProductEvent,
    "The product catalogue, keyed by product id: from the company API (the connector), "
    "`POST /v1/products` on ingest and `mgrecs backfill-products`. Consumed by the mgrecs "
    "tracker.",
)
FEEDBACK = Producer(
    topics.FEEDBACK,
    FeedbackEvent,
    "Impressions, clicks, add-to-carts and purchases the frontend reports, published by the "
    "api (`POST /v1/feedback`).",
)
SERVED = Producer(
    topics.SERVED,
    ServedList,
    "What the api answered (a customer's list, a visitor's, a region page, similar items, a "
    "ranking), one message per answer, keyed by customer id (else region, else product id), "
    "published by the api in batches when `served_recording` is on. Consumed by the mgrecs "
    "tracker.",
)
SCHEDULE_TICKS = Producer(
    topics.SCHEDULE_TICKS,
    ScheduleTick,
    "Ticks asking for a retrain, refresh or infer job, published by the scheduler (and "
    "`mgrecs tick`; `mgrecs promote` and `mgrecs rollback` publish an infer).",
)
INFER_SHARDS = Producer(
    topics.INFER_SHARDS,
    InferShard,
    "Shard tasks of an infer run, keyed `generation:shard`, published by the batch worker "
    "running it.",
)
ENGINE_EVENTS = Producer(
    topics.ENGINE_EVENTS,
    AcceptedEvents,
    "The events an engine replica's PutEvents accepted, one message per request, published "
    "before it answers. Every engine replica reads all partitions without a consumer group "
    "(from its served model's training time on) into its real-time history.",
)
PRODUCERS = (ORDERS, PRODUCTS, FEEDBACK, SERVED, SCHEDULE_TICKS, INFER_SHARDS, ENGINE_EVENTS)

Handler = Callable[..., Coroutine[Any, Any, None]]


def subscribe(
    broker: KafkaBroker, settings: Settings, consumer: Consumer, handler: Handler, **options: Any
) -> LogicSubscriber[Any]:
    """`consumer`'s subscriber on `broker`, calling `handler`: from the earliest offset,
    acknowledging by hand, handing over the raw bytes (so that `records.read_message`
    decides what is poison); `options` go to `broker.subscriber`."""
    subscriber: LogicSubscriber[Any] = broker.subscriber(
        topics.topic(consumer.topic, settings),
        group_id=topics.group_id(consumer.group, settings),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_body,
        title=f"{consumer.topic}:{consumer.group}",
        description=consumer.description,
        **options,
    )
    subscriber(handler)
    return subscriber


def dead_letters(broker: KafkaBroker, settings: Settings, consumer: Consumer) -> DefaultPublisher:
    """The publisher of `consumer`'s dead letters (`records.send_dead_letter` sends them)."""
    return publisher(broker, settings, Producer(consumer.dlq, DeadLetter, consumer.dlq_description))


def publisher(broker: KafkaBroker, settings: Settings, producer: Producer) -> DefaultPublisher:
    """`producer`'s publisher on `broker`."""
    declared: DefaultPublisher = broker.publisher(
        topics.topic(producer.topic, settings),
        title=producer.topic,
        description=producer.description,
        schema=producer.message,
    )
    return declared


def asyncapi_broker(broker: KafkaBroker) -> KafkaBroker:
    """`broker` (never started) with every declaration of the platform: each consumer's
    subscriber (its message as payload) and dead-letter publisher, each producer (a
    dead-letter topic two consumers share is declared once)."""
    settings = Settings(topic_prefix="")
    for consumer in CONSUMERS:
        subscribe(broker, settings, consumer, _reads(consumer.message))
    dlqs = {consumer.dlq: consumer for consumer in CONSUMERS}
    for consumer in dlqs.values():
        dead_letters(broker, settings, consumer)
    for producer in PRODUCERS:
        publisher(broker, settings, producer)
    return broker


def _reads(message: type[BaseModel]) -> Handler:
    """A handler whose payload is `message`, for the document (the services' handlers take
    the raw bytes)."""

    async def reads(body: Any) -> None:
        """Never called: the document's subscribers are not started."""

    reads.__annotations__["body"] = message
    return reads


async def publish_tick(
    settings: Settings, kind: TickKind, tick_id: str | None = None
) -> ScheduleTick:
    """Publish one schedule tick (a fresh id unless given), keyed by kind as the scheduler
    keys its own; returns it, so callers can wait for its job."""
    tick = ScheduleTick(kind=kind) if tick_id is None else ScheduleTick(kind=kind, tick_id=tick_id)
    broker = make_broker(settings, graceful_timeout=None)
    ticks = publisher(broker, settings, SCHEDULE_TICKS)
    async with broker:
        await ticks.publish(tick.model_dump_json().encode(), key=kind.encode())
    return tick
