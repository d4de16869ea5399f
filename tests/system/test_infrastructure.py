"""The test infrastructure itself: migrations applied, broker reachable, topics created."""

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mgrecs.common import topics
from mgrecs.common.settings import Settings


async def test_schema_has_the_cache_tables_exactly_as_the_old_pipeline(pool) -> None:
    rows = await pool.fetch(
        """
        SELECT table_name, column_name, data_type, character_maximum_length
        FROM information_schema.columns
        WHERE table_name IN ('offline_user_recommendations', 'offline_similar_items')
        ORDER BY table_name, ordinal_position
        """
    )
    assert [tuple(r) for r in rows] == [
        ("offline_similar_items", "product_id", "character varying", 255),
        ("offline_similar_items", "similar_products", "jsonb", None),
        ("offline_similar_items", "updated_at", "timestamp without time zone", None),
        ("offline_user_recommendations", "user_id", "character varying", 255),
        ("offline_user_recommendations", "recommendations", "jsonb", None),
        ("offline_user_recommendations", "updated_at", "timestamp without time zone", None),
    ]


async def test_broker_round_trip_on_prefixed_topic(settings: Settings) -> None:
    name = topics.topic(topics.ORDERS, settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(name, b"hello", key=b"k")
    await producer.stop()
    consumer = AIOKafkaConsumer(
        name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id="probe",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
        values = [m.value for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    assert values == [b"hello"]
