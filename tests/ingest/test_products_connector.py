"""The connector pulls the company's catalogue (`GET /products`) as it pulls orders: the same
pagination, auth and fault handling, its own watermark, pages onto `products`, malformed
records to `products.dlq`; and the tracker then writes them."""

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings

from mgrecs.cli.embedded import free_port
from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.schemas import MAX_AHEAD, DeadLetter
from mgrecs.common.settings import Settings
from mgrecs.ingest.company_client import ApiUnavailableError
from mgrecs.ingest.connector import PRODUCTS_SOURCE_SUFFIX, OrderConnector
from mgrecs.ingest.fake_company_api import (
    FakeCompanyApi,
    create_fake_api,
    generate_orders,
    generate_products,
)
from mgrecs.ingest.mapping import (
    FieldMapping,
    MalformedRecordError,
    load_mapping,
    map_product,
    product_position,
)
from mgrecs.ingest.publisher import OrderPublisher
from mgrecs.store.watermarks import load_watermark
from mgrecs.tracker.products_sink import ProductsSink
from support.helpers import eventually, read_topic, running, serve
from support.orders_topic import caught_up
from support.paths import REPO_ROOT
from support.poison_inputs import json_values, near_valid

MAPPING_FILE = REPO_ROOT / "deploy" / "company-api-mapping.json"
PRODUCTS = 45
PAGE_SIZE = 10


@pytest.fixture
def mapping() -> FieldMapping:
    return load_mapping(MAPPING_FILE)


@pytest.fixture
def api() -> FakeCompanyApi:
    return FakeCompanyApi(generate_orders(15, seed=2), products=generate_products(PRODUCTS))


@pytest.fixture
async def api_settings(settings: Settings, api: FakeCompanyApi) -> AsyncIterator[Settings]:
    async with serve(create_fake_api(api), free_port()) as url:
        yield settings.model_copy(
            update={
                "connector_base_url": url,
                "connector_token": api.token,
                "connector_page_size": PAGE_SIZE,
                "connector_requests_per_second": 0,
                "connector_backoff_seconds": 0.05,
                "connector_backoff_max_seconds": 0.2,
                "connector_timeout_seconds": 2.0,
            }
        )
        api.release.set()


@contextlib.asynccontextmanager
async def connector(
    settings: Settings, mapping: FieldMapping, pool: asyncpg.Pool
) -> AsyncIterator[OrderConnector]:
    publisher = OrderPublisher(settings)
    syncer = OrderConnector(settings, mapping, pool, publisher)
    try:
        yield syncer
    finally:
        await syncer.aclose()
        await publisher.close()


async def published(settings: Settings) -> list[ProductEvent]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.PRODUCTS, settings))
    for record in records:
        assert record.key == ProductEvent.model_validate_json(record.value).key
    return [ProductEvent.model_validate_json(record.value) for record in records]


async def letters(settings: Settings) -> list[DeadLetter]:
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.PRODUCTS_DLQ, settings)
    )
    return [DeadLetter.model_validate_json(record.value) for record in records]


@pytest.mark.parametrize("pagination", ["cursor", "page"])
async def test_a_sync_publishes_every_product_once_past_its_own_watermark(
    api_settings: Settings,
    api: FakeCompanyApi,
    mapping: FieldMapping,
    pool: asyncpg.Pool,
    pagination: str,
) -> None:
    settings = api_settings.model_copy(update={"connector_pagination": pagination})
    async with connector(settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
        assert report.published == 15
        assert report.products is not None and report.products.published == PRODUCTS
        products = await published(settings)
        assert sorted(p.product_id for p in products) == sorted(p["sku"] for p in api.products)
        source = settings.connector_source + PRODUCTS_SOURCE_SUFFIX
        watermark = await load_watermark(pool, source)
        last = max(api.products, key=lambda p: (p["updated_at"], p["sku"]))
        assert watermark is not None and watermark.order_id == last["sku"]
        # nothing new: nothing published; a product changed upstream comes again
        again = await syncer.sync_once()
        assert again.products is not None and again.products.published == 0
        api.touch_product("SKU-0003", price="1.99", stock=0)
        third = await syncer.sync_once()
        assert third.products is not None and third.products.published == 1
    newest = [p for p in await published(settings) if p.product_id == "SKU-0003"][-1]
    assert (newest.price, newest.in_stock) == (Decimal("1.99"), False)


async def test_mapped_fields_and_malformed_records(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.malformed_ids.add("SKU-0007")
    api.products.append({"sku": "SKU-NOSTAMP", "title": "bad stamp", "updated_at": "yesterday"})
    # A time UTC cannot hold (it stopped the connector with an OverflowError).
    api.products.append({"sku": "SKU-YEAR1", "updated_at": "0001-01-01T00:00:00+01:00"})
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    assert report.products is not None
    assert (report.products.published, report.products.dead_lettered) == (PRODUCTS - 1, 3)
    dead = {letter.key: letter.reason for letter in await letters(api_settings)}
    assert "price" in dead["SKU-0007"]
    assert "updated_at" in dead["SKU-NOSTAMP"]
    assert "out of range" in dead["SKU-YEAR1"]
    raw = next(p for p in api.products if p["sku"] == "SKU-0001")
    product = next(p for p in await published(api_settings) if p.product_id == "SKU-0001")
    assert product.name == raw["title"] and str(product.cost) == raw["cost"]
    assert product.attributes == raw["specs"]
    assert product.in_stock == (raw["stock"] > 0)


async def test_a_record_from_the_far_future_leaves_the_watermark_where_it_was(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    """Dead-lettered, and not a position: the watermark it would set (year 9999) would ask
    the API for nothing newer ever again, so every later change would be lost. It comes
    again at each pass while upstream keeps it."""
    api.products.append({"sku": "SKU-FUTURE", "updated_at": "9999-12-31T23:59:59Z"})
    async with connector(api_settings, mapping, pool) as syncer:
        first = await syncer.sync_once()
        assert first.products is not None
        assert (first.products.published, first.products.dead_lettered) == (PRODUCTS, 1)
        changed = next(p for p in api.products if p["sku"] == "SKU-0003")
        changed["price"] = "1.99"
        changed["updated_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        second = await syncer.sync_once()
    assert second.products is not None
    assert (second.products.published, second.products.dead_lettered) == (1, 1)
    newest = [p for p in await published(api_settings) if p.product_id == "SKU-0003"][-1]
    assert newest.price == Decimal("1.99")
    dead = [letter for letter in await letters(api_settings) if letter.key == "SKU-FUTURE"]
    assert dead and "future" in dead[0].reason


async def test_faults_are_retried_and_a_wrong_token_is_refused(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.fail_next = 2
    api.faults.throttle_next = 1
    api.faults.duplicate_records = True
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    assert report.products is not None and report.products.published == PRODUCTS
    wrong = api_settings.model_copy(update={"connector_token": "nope"})
    async with connector(wrong, mapping, pool) as syncer:
        with pytest.raises(ApiUnavailableError):
            await syncer.products.sync_once()  # type: ignore[union-attr]


async def test_pulled_products_reach_the_products_table(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    async with connector(api_settings, mapping, pool) as syncer:
        await syncer.sync_once()
    async with running(ProductsSink(api_settings)):
        await eventually(lambda: caught_up(api_settings, ProductsSink.group, topics.PRODUCTS))
    count = await pool.fetchval("SELECT count(*) FROM products WHERE source_updated_at IS NOT NULL")
    assert count == PRODUCTS
    row = await pool.fetchrow("SELECT cost, attributes FROM products WHERE product_id = 'SKU-0002'")
    raw = next(p for p in api.products if p["sku"] == "SKU-0002")
    assert str(row["cost"]) == raw["cost"] and row["attributes"] == raw["specs"]


@hypothesis_settings(max_examples=300, deadline=None)
@given(record=near_valid(generate_products(1)[0]) | json_values)
@example(record={**generate_products(1)[0], "updated_at": "0001-01-01T00:00:00+01:00"})
@example(record={**generate_products(1)[0], "updated_at": "9999-12-31T23:00:00-05:00"})
@example(record={**generate_products(1)[0], "updated_at": "9999-12-31T23:59:59Z"})
def test_any_company_record_is_a_product_or_malformed(record: Any) -> None:
    """Whatever the company API sends as a product: a position and a `ProductEvent` that
    reads back the same from the topic, or MalformedRecordError (a dead letter), never
    another exception (it would stop the connector on the same page at every pass)."""
    fields = load_mapping(MAPPING_FILE).products
    assert fields is not None
    with contextlib.suppress(MalformedRecordError):
        position = product_position(record, fields)
        assert position.updated_at <= datetime.now(UTC) + MAX_AHEAD  # the watermark stays sane
    try:
        product = map_product(record, fields)
    except MalformedRecordError:
        return
    assert ProductEvent.model_validate_json(product.model_dump_json()) == product
