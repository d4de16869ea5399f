"""Kafka topic and consumer-group names: contracts shared with upstream teams and between
services (consumer groups unprefixed: `topic_prefix` goes before both)."""

from mgrecs.common.settings import Settings

ORDERS = "orders"
ORDERS_DLQ = "orders.dlq"
ORDERS_EVENTS_DLQ = "orders.events.dlq"
"""Order lines PutEvents did not take after the bounded attempts, or refused."""
SCHEDULE_TICKS = "schedule-ticks"
SCHEDULE_TICKS_DLQ = "schedule-ticks.dlq"
INFER_SHARDS = "infer-shards"
"""Shard tasks of an infer run (batch workers share them, one consumer group)."""
INFER_SHARDS_DLQ = "infer-shards.dlq"
FEEDBACK = "feedback"
"""Impressions, clicks, add-to-carts and purchases the frontend reports (`POST /v1/feedback`)."""
FEEDBACK_DLQ = "feedback.dlq"
ENGINE_EVENTS = "engine-events"
"""Events any engine replica's PutEvents accepted; every replica reads all of it (no group)."""
PRODUCTS = "products"
"""The product catalogue from the company (`ProductEvent`, keyed by product id)."""
PRODUCTS_DLQ = "products.dlq"
SERVED = "served"
"""What the api answered (`ServedList`, keyed by customer or visitor): impact and online
accuracy are measured against it."""
SERVED_DLQ = "served.dlq"

TRACKER_DB_GROUP = "mgrecs-tracker-db"
"""Consumer group of the tracker's sink writing `orders` to PostgreSQL."""
TRACKER_EVENTS_GROUP = "mgrecs-tracker-events"
"""Consumer group of the tracker's sink sending `orders` lines to PutEvents."""
TRACKER_FEEDBACK_GROUP = "mgrecs-tracker-feedback"
"""Consumer group of the tracker's sink writing `feedback` to PostgreSQL."""
TRACKER_PRODUCTS_GROUP = "mgrecs-tracker-products"
"""Consumer group of the tracker's sink writing `products` (the catalogue) to PostgreSQL."""
TRACKER_SERVED_GROUP = "mgrecs-tracker-served"
"""Consumer group of the tracker's sink writing `served` to PostgreSQL."""
TRACKER_ORDER_GROUPS = (TRACKER_DB_GROUP, TRACKER_EVENTS_GROUP)
"""The groups consuming `orders` (their lag is what the status page shows)."""
BATCH_GROUP = "mgrecs-batch"
"""Consumer group of the batch workers taking `schedule-ticks`."""
BATCH_SHARDS_GROUP = "mgrecs-batch-shards"
"""Consumer group of the batch workers sharing `infer-shards`."""

ALL_TOPICS = (
    ORDERS,
    ORDERS_DLQ,
    ORDERS_EVENTS_DLQ,
    SCHEDULE_TICKS,
    SCHEDULE_TICKS_DLQ,
    INFER_SHARDS,
    INFER_SHARDS_DLQ,
    FEEDBACK,
    FEEDBACK_DLQ,
    ENGINE_EVENTS,
    PRODUCTS,
    PRODUCTS_DLQ,
    SERVED,
    SERVED_DLQ,
)
PARTITIONS = {
    ORDERS: 6,
    ORDERS_DLQ: 1,
    ORDERS_EVENTS_DLQ: 1,
    SCHEDULE_TICKS: 1,
    SCHEDULE_TICKS_DLQ: 1,
    INFER_SHARDS: 6,
    INFER_SHARDS_DLQ: 1,
    FEEDBACK: 6,
    FEEDBACK_DLQ: 1,
    ENGINE_EVENTS: 6,
    PRODUCTS: 3,
    PRODUCTS_DLQ: 1,
    SERVED: 6,
    SERVED_DLQ: 1,
}
_DAY_MS = 24 * 3600 * 1000
RETENTION_MS = {
    ORDERS: 7 * _DAY_MS,  # a week to replay into a rebuilt sink; PostgreSQL is the record
    ORDERS_DLQ: 30 * _DAY_MS,  # dead letters wait for a person: a month
    ORDERS_EVENTS_DLQ: 30 * _DAY_MS,
    SCHEDULE_TICKS: _DAY_MS,  # a tick older than a day is past its slot anyway
    SCHEDULE_TICKS_DLQ: 30 * _DAY_MS,
    INFER_SHARDS: _DAY_MS,  # an infer run times out after MGRECS_INFER_TIMEOUT_HOURS
    INFER_SHARDS_DLQ: 30 * _DAY_MS,
    FEEDBACK: 7 * _DAY_MS,
    FEEDBACK_DLQ: 30 * _DAY_MS,
    PRODUCTS: 7 * _DAY_MS,  # like orders: PostgreSQL is the record
    PRODUCTS_DLQ: 30 * _DAY_MS,
    SERVED: 2 * _DAY_MS,  # PostgreSQL is the record; two days cover a sink outage
    SERVED_DLQ: 30 * _DAY_MS,
}
"""How long the broker keeps each topic's messages (`retention.ms`, set on creation);
`engine-events` is a setting (`retention_ms`)."""


def retention_ms(name: str, settings: Settings) -> int:
    """`retention.ms` of topic `name`: `engine-events` must cover the time since the last
    retrain (a restarted engine reads it back from the served model's training on)."""
    if name == ENGINE_EVENTS:
        return settings.engine_events_retention_days * _DAY_MS
    return RETENTION_MS[name]


def topic(name: str, settings: Settings) -> str:
    """The physical topic name for a logical one (adds the configured prefix)."""
    return f"{settings.topic_prefix}{name}"


def group_id(name: str, settings: Settings) -> str:
    """The consumer group id for a logical group name: groups get the topic prefix too, so
    tenants sharing a broker stay apart."""
    return f"{settings.topic_prefix}{name}"
