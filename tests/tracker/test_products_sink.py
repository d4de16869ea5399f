"""The tracker's catalogue sink (topic `products`), on the real broker and database: records
land, poison is dead-lettered with its reason, the company's `updated_at` decides, and the
orders never clobber what the catalogue says."""

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.store.products import search_products, write_catalogue
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.products_sink import ProductsSink
from support.dead_letters import read_dead_letters, valid_and_each_poison_dead_lettered_once
from support.helpers import eventually, running
from support.orders_topic import as_messages, caught_up
from support.orders_topic import publish as publish_orders
from support.poison_inputs import raw_documents

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def product(product_id: str, at: datetime = T0, **fields: Any) -> ProductEvent:
    values: dict[str, Any] = {
        "name": f"Lamp {product_id}",
        "category": "home-garden",
        "price": Decimal("39.90"),
        "cost": Decimal("21.50"),
        "attributes": {"brand": "Lumo", "size": "M"},
        "launched_at": T0 - timedelta(days=3),
        **fields,
    }
    return ProductEvent(product_id=product_id, updated_at=at, **values)


async def publish(
    settings: Settings, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send `messages` in order; where each landed (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        topic = topics.topic(topics.PRODUCTS, settings)
        sent = [await producer.send_and_wait(topic, value, key=key) for key, value in messages]
        return [(metadata.partition, metadata.offset) for metadata in sent]
    finally:
        await producer.stop()


def as_records(products: list[ProductEvent]) -> list[tuple[bytes | None, bytes]]:
    return [(p.key, p.model_dump_json().encode()) for p in products]


async def products_caught_up(settings: Settings) -> bool:
    return await caught_up(settings, ProductsSink.group, topics.PRODUCTS)


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    return await read_dead_letters(
        settings.kafka_bootstrap, topics.topic(topics.PRODUCTS_DLQ, settings)
    )


async def stored(pool: asyncpg.Pool, product_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT name, category, price, cost, in_stock, active, launched_at, attributes, "
        "source_updated_at FROM products WHERE product_id = $1",
        product_id,
    )
    return row


async def test_products_sink_writes_the_catalogue_and_dead_letters_poison(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    good = [
        product("P1"),
        product("P2", in_stock=False, active=False, attributes={}),
        product("P3", cost=None, margin=Decimal("10.00")),
    ]
    poison = [
        (b"k1", b"{not json", "not JSON"),
        (b"k2", json.dumps({"name": "no id"}).encode(), "product_id: Field required"),
        (b"k3", b'{"product_id": "P9", "price": "-1"}', "price"),
        (b"k4", b'{"product_id": "P9", "margin": "3"}', "needs the price"),
        (b"k5", b'{"product_id": "P9", "attributes": [1, 2]}', "attributes"),
        (b"k6", b"\xff\xfe", "not JSON"),
    ]
    messages = as_records(good)
    await publish(settings, [messages[0], *[(k, v) for k, v, _ in poison], *messages[1:]])

    async with running(ProductsSink(settings)):
        await eventually(lambda: products_caught_up(settings))
        letters = await dead_letters(settings)
        reasons = {letter.key: letter.reason for letter in letters}
        assert len(letters) == len(poison)
        for key, _, fragment in poison:
            assert fragment in reasons[key.decode()], reasons[key.decode()]

        row = await stored(pool, "P1")
        assert (row["name"], row["category"], row["price"], row["cost"]) == (
            "Lamp P1",
            "home-garden",
            Decimal("39.90"),
            Decimal("21.50"),
        )
        assert row["attributes"] == {"brand": "Lumo", "size": "M"}
        assert row["source_updated_at"] == T0
        assert row["launched_at"] == T0 - timedelta(days=3)
        p2 = await stored(pool, "P2")
        assert (p2["in_stock"], p2["active"], p2["attributes"]) == (False, False, {})
        assert (await stored(pool, "P3"))["cost"] == Decimal("29.90")  # price - margin

        # A newer version replaces the product; a late older one changes nothing.
        newer = product("P1", T0 + timedelta(hours=2), price=Decimal("35.00"), in_stock=False)
        older = product("P1", T0 + timedelta(hours=1), price=Decimal("99.00"), name="Old")
        await publish(settings, as_records([newer, older]))
        await eventually(lambda: products_caught_up(settings))
        row = await stored(pool, "P1")
        assert (row["price"], row["in_stock"], row["name"]) == (Decimal("35.00"), False, "Lamp P1")
        assert row["source_updated_at"] == T0 + timedelta(hours=2)

        # A replay of everything changes nothing, not even the update times.
        stamps = await pool.fetch("SELECT product_id, updated_at FROM products ORDER BY 1")
        await publish(settings, as_records([*good, newer, older]))
        await eventually(lambda: products_caught_up(settings))
        assert await pool.fetch("SELECT product_id, updated_at FROM products ORDER BY 1") == stamps


async def test_orders_fill_in_only_what_the_catalogue_left_empty(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    def order(order_id: str, product_id: str, name: str, price: str) -> OrderEvent:
        return OrderEvent.model_validate(
            {
                "order_id": order_id,
                "ordered_at": "2026-11-10T10:00:00Z",
                "customer": {"customer_id": "C1"},
                "lines": [
                    {
                        "product_id": product_id,
                        "quantity": 1,
                        "price": price,
                        "product_name": name,
                        "category": "from-orders",
                    }
                ],
            }
        )

    # P1: the catalogue first, then an order naming it otherwise.
    await write_catalogue(pool, [product("P1", category=None)])
    # P2: sold first, then described by the catalogue, then sold again.
    async with running(DbSink(settings)):
        await publish_orders(
            settings,
            as_messages(
                [order("O1", "P1", "Order name", "1.00"), order("O2", "P2", "Sold", "2.00")]
            ),
        )
        await eventually(lambda: caught_up(settings, DbSink.group))
        p1 = await stored(pool, "P1")
        assert (p1["name"], p1["price"], p1["category"]) == (
            "Lamp P1",
            Decimal("39.90"),
            "from-orders",  # the catalogue left it empty: the order fills it
        )
        assert (await stored(pool, "P2"))["name"] == "Sold"
        await write_catalogue(pool, [product("P2", name="Catalogue name")])
        await publish_orders(settings, as_messages([order("O3", "P2", "Other", "3.00")]))
        await eventually(lambda: caught_up(settings, DbSink.group))
    p2 = await stored(pool, "P2")
    assert (p2["name"], p2["price"], p2["category"]) == (
        "Catalogue name",
        Decimal("39.90"),
        "home-garden",
    )
    found = await search_products(pool, "lamp p1", None, 10)
    assert [f.product_id for f in found] == ["P1"] and found[0].sold


versions = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # hours after T0 (ties happen)
        st.sampled_from(["9.99", "10.00", "12.50"]),
        st.booleans(),
        st.sampled_from(["Lumo", "Brite"]),
    ),
    min_size=1,
    max_size=6,
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=versions, seed=st.integers(min_value=0, max_value=2**16))
async def test_the_newest_version_wins_whatever_the_arrival_order_and_batching(
    pool: asyncpg.Pool, history: list[tuple[int, str, bool, str]], seed: int
) -> None:
    await pool.execute("DELETE FROM products WHERE product_id = 'PV'")
    events = [
        product(
            "PV",
            T0 + timedelta(hours=h),
            price=Decimal(price),
            in_stock=stock,
            attributes={"brand": brand},
        )
        for h, price, stock, brand in history
    ]
    rng = random.Random(seed)
    shuffled = events[:]
    rng.shuffle(shuffled)
    cut = rng.randrange(len(shuffled) + 1)
    for batch in (shuffled[:cut], shuffled[cut:]):
        if batch:
            await write_catalogue(pool, batch)
    await write_catalogue(pool, [rng.choice(events)])  # a replay
    row = await stored(pool, "PV")
    in_order = events[:]
    in_order.sort(key=lambda e: e.updated_at)
    for event in in_order:  # the reference: one version at a time, oldest first
        await write_catalogue(pool, [event])
    assert await stored(pool, "PV") == row
    newest = max(e.updated_at for e in events)
    assert row["source_updated_at"] == newest


PRODUCT_EXAMPLE = {
    "product_id": "P0201",
    "name": "Eco Lamp 201",
    "category": "home-garden",
    "price": "39.90",
    "cost": "21.50",
    "launched_at": "2026-11-01T00:00:00Z",
    "attributes": {"brand": "Lumo", "size": 3},
    "updated_at": "2026-11-20T10:15:00Z",
}


@hypothesis_settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # each example starts a sink (seconds): few examples, many records each
@given(raw=st.lists(raw_documents(PRODUCT_EXAMPLE), min_size=10, max_size=60))
async def test_any_bytes_on_products_are_written_or_dead_lettered_and_the_sink_goes_on(
    settings: Settings, pool: asyncpg.Pool, raw: list[bytes]
) -> None:
    before = len(await dead_letters(settings))  # only names the marker
    marker = product(f"M{before}-{len(raw)}")  # a valid record after the hostile ones
    sent = await publish(settings, [*[(b"h", value) for value in raw], *as_records([marker])])
    async with running(ProductsSink(settings)) as sink:
        await eventually(lambda: products_caught_up(settings))
        assert sink.stopping.error is None
    valid = await valid_and_each_poison_dead_lettered_once(
        settings.kafka_bootstrap,
        topics.topic(topics.PRODUCTS_DLQ, settings),
        ProductEvent,
        raw,
        sent,
    )
    for event in [*valid, marker]:
        assert await stored(pool, event.product_id) is not None
