"""The pull connector against the fake company API, a real broker and a real PostgreSQL."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from mgrecs.cli.embedded import free_port
from mgrecs.common import topics
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.company_client import ApiUnavailableError
from mgrecs.ingest.connector import OrderConnector
from mgrecs.ingest.fake_company_api import FakeCompanyApi, create_fake_api, generate_orders
from mgrecs.ingest.identity import open_resolver
from mgrecs.ingest.mapping import (
    FieldMapping,
    MappingError,
    Position,
    load_mapping,
    map_record,
)
from mgrecs.ingest.publisher import BrokerUnavailableError, OrderPublisher
from mgrecs.store.watermarks import load_watermark
from support.helpers import eventually, read_topic, serve
from support.orders_topic import caught_up, dead_letters
from support.paths import REPO_ROOT

MAPPING_FILE = REPO_ROOT / "deploy" / "company-api-mapping.json"
ORDERS = 120
PAGE_SIZE = 10


@pytest.fixture
def mapping() -> FieldMapping:
    """The deployed mapping, orders only (the catalogue's pull: test_products_connector.py)."""
    return load_mapping(MAPPING_FILE).model_copy(update={"products": None})


@pytest.fixture
def api() -> FakeCompanyApi:
    return FakeCompanyApi(generate_orders(ORDERS, seed=11))


@pytest.fixture
async def api_settings(settings: Settings, api: FakeCompanyApi) -> AsyncIterator[Settings]:
    """Settings pointing the connector at the fake API, served on a real port."""
    port = free_port()
    async with serve(create_fake_api(api), port) as url:
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
        api.release.set()  # lets a stalled request finish so the server can stop


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


async def published(settings: Settings) -> list[OrderEvent]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS, settings))
    return [OrderEvent.model_validate_json(record.value) for record in records]


def all_ids(api: FakeCompanyApi) -> set[str]:
    return {order["id"] for order in api.orders}


@pytest.mark.parametrize("pagination", ["cursor", "page"])
async def test_full_sync_publishes_every_order_exactly_once(
    api_settings: Settings,
    api: FakeCompanyApi,
    mapping: FieldMapping,
    pool: asyncpg.Pool,
    pagination: str,
) -> None:
    settings = api_settings.model_copy(update={"connector_pagination": pagination})
    async with connector(settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
        again = await syncer.sync_once()  # nothing new: nothing sent
    orders = await published(settings)
    assert sorted(o.order_id for o in orders) == sorted(all_ids(api))
    assert report.published == ORDERS and again.published == 0
    last = api.sorted_orders()[-1]
    assert await load_watermark(pool, settings.connector_source) == Position(
        datetime.fromisoformat(last["updated_at"]), last["id"]
    )
    # Keyed by customer id, and the mapping filled the customer and line fields.
    by_id = {o["id"]: o for o in api.orders}
    sample = next(o for o in orders if o.order_id == "ORD-000007")
    assert sample.customer.customer_id == by_id["ORD-000007"]["customer"]["id"]
    assert sample.customer.region == by_id["ORD-000007"]["customer"]["address"]["region"]
    assert [line.product_id for line in sample.lines] == [
        item["sku"] for item in by_id["ORD-000007"]["items"]
    ]


async def test_api_key_auth_and_a_refused_token(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.auth_kind = "api-key"
    settings = api_settings.model_copy(update={"connector_auth": "api-key"})
    async with connector(settings, mapping, pool) as syncer:
        assert (await syncer.sync_once()).published == ORDERS
    wrong = settings.model_copy(update={"connector_token": "wrong"})
    async with connector(wrong, mapping, pool) as syncer:
        with pytest.raises(ApiUnavailableError, match="HTTP 401"):
            await syncer.sync_once()


@pytest.mark.parametrize("pagination", ["cursor", "page"])
async def test_resume_after_a_crash_mid_sync_leaves_no_gap(
    api_settings: Settings,
    api: FakeCompanyApi,
    mapping: FieldMapping,
    pool: asyncpg.Pool,
    pagination: str,
) -> None:
    settings = api_settings.model_copy(update={"connector_pagination": pagination})
    source = settings.connector_source
    api.faults.stall_after_reads = 4
    async with connector(settings, mapping, pool) as syncer:
        task = asyncio.create_task(syncer.sync_once())
        # The fifth request hangs. In cursor mode it is sent while page four is published
        # (the next page downloads meanwhile), so wait until what was published and the
        # watermark agree: while the request hangs nothing more can arrive.
        await eventually(lambda: _async(api.stalled == 1))

        async def settled() -> bool:
            so_far = await published(settings)
            mark = await load_watermark(pool, source)
            return bool(so_far) and mark == max(_position(order, api) for order in so_far)

        await eventually(settled)
        at_crash = await load_watermark(pool, source)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    before = await published(settings)
    assert at_crash is not None and 0 < len(before) < ORDERS  # a real mid-sync stop
    assert at_crash == max(_position(order, api) for order in before)

    api.faults.stall_after_reads = None
    api.release.set()
    async with connector(settings, mapping, pool) as syncer:
        await syncer.sync_once()
    orders = await published(settings)
    assert sorted(o.order_id for o in orders) == sorted(all_ids(api))  # no gap, no duplicate
    final = await load_watermark(pool, source)
    assert final is not None and final > at_crash


async def _async(value: bool) -> bool:
    return value


def _position(order: OrderEvent, api: FakeCompanyApi) -> Position:
    record = next(o for o in api.orders if o["id"] == order.order_id)
    return Position(datetime.fromisoformat(record["updated_at"]), record["id"])


async def test_the_watermark_waits_for_the_broker(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    """Pages the broker did not acknowledge are not marked as synced."""
    unreachable = api_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    async with connector(unreachable, mapping, pool) as syncer:
        with pytest.raises(BrokerUnavailableError):
            await syncer.sync_once()
    assert api.page_reads <= 2  # the first page, and at most the next one read ahead
    assert await load_watermark(pool, api_settings.connector_source) is None


async def test_5xx_burst_then_recovery(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.fail_next = 3
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    assert api.statuses[:3] == [503, 503, 503]
    assert report.published == ORDERS
    assert sorted(o.order_id for o in await published(api_settings)) == sorted(all_ids(api))


async def test_an_api_that_stays_down_is_reported(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    from prometheus_client import REGISTRY

    api.faults.fail_next = 100
    settings = api_settings.model_copy(update={"connector_max_attempts": 3})
    async with connector(settings, mapping, pool) as syncer:
        with pytest.raises(ApiUnavailableError, match="after 3 attempts"):
            await syncer.sync_once()
    assert api.statuses == [503, 503, 503]
    assert REGISTRY.get_sample_value("mgrecs_connector_api_down") == 1
    assert await load_watermark(pool, settings.connector_source) is None
    api.faults.fail_next = 0
    async with connector(settings, mapping, pool) as syncer:
        await syncer.sync_once()
    assert REGISTRY.get_sample_value("mgrecs_connector_api_down") == 0


async def test_429_retry_after_is_honoured(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.throttle_next = 2
    api.faults.retry_after = 1
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    assert api.statuses[:2] == [429, 429]
    assert api.early_retries == 0  # never came back before Retry-After had passed
    assert report.published == ORDERS


async def test_requests_keep_to_the_configured_rate(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    settings = api_settings.model_copy(update={"connector_requests_per_second": 5})
    async with connector(settings, mapping, pool) as syncer:
        await syncer.sync_once()
    assert api.requests == ORDERS // PAGE_SIZE
    # No one-second window holds more than the rate allows (+1 for the window's edge).
    busiest = max(
        sum(1 for t in api.arrivals if start <= t < start + 1.0) for start in api.arrivals
    )
    assert busiest <= 5 + 1


async def test_slow_pages_time_out_and_are_retried(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.slow_next = 1
    api.faults.slow_seconds = 3.0
    settings = api_settings.model_copy(update={"connector_timeout_seconds": 0.5})
    async with connector(settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    assert report.published == ORDERS
    assert api.requests == ORDERS // PAGE_SIZE + 1  # twelve pages, one of them asked twice


async def test_malformed_records_are_dead_lettered_and_good_ones_land(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    bad = {"ORD-000003", "ORD-000050"}
    api.faults.malformed_ids = bad
    api.orders[10]["updated_at"] = "yesterday"  # no usable position either
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    orders = await published(api_settings)
    assert sorted(o.order_id for o in orders) == sorted(all_ids(api) - bad - {"ORD-000010"})
    letters = await dead_letters(api_settings)
    assert report.dead_lettered == len(letters) == 3
    reasons = {json.loads(letter.payload)["id"]: letter.reason for letter in letters}
    assert set(reasons) == bad | {"ORD-000010"}
    assert "customer_id" in reasons["ORD-000003"] and "quantity" in reasons["ORD-000003"]
    assert "updated_at is not an ISO timestamp" in reasons["ORD-000010"]


async def test_duplicate_records_are_published_once(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    api.faults.duplicate_records = True
    async with connector(api_settings, mapping, pool) as syncer:
        report = await syncer.sync_once()
    orders = await published(api_settings)
    assert sorted(o.order_id for o in orders) == sorted(all_ids(api))
    assert report.skipped == ORDERS


@pytest.mark.parametrize("pagination", ["cursor", "page"])
async def test_a_page_that_changes_between_reads_loses_no_order(
    api_settings: Settings,
    api: FakeCompanyApi,
    mapping: FieldMapping,
    pool: asyncpg.Pool,
    pagination: str,
) -> None:
    settings = api_settings.model_copy(update={"connector_pagination": pagination})
    api.faults.change_after_reads = 2  # an order of page 2 is updated before page 3 is read
    async with connector(settings, mapping, pool) as syncer:
        await syncer.sync_once()
    ids = [o.order_id for o in await published(settings)]
    assert set(ids) == all_ids(api)
    assert len(ids) == ORDERS + 1  # the updated order is sent again, as an update


def test_a_bad_mapping_file_names_the_field(tmp_path: Path) -> None:
    raw = json.loads(MAPPING_FILE.read_text())
    raw["line"]["quantity"] = "qty count"
    del raw["customer"]["customer_id"]
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(MappingError) as error:
        load_mapping(path)
    assert "line.quantity" in str(error.value)
    assert "customer.customer_id: Field required" in str(error.value)


async def test_a_lost_watermark_write_resends_but_postgres_holds_each_order_once(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    """A crash after the broker's ack but before the watermark write re-sends those pages;
    the tracker's upserts by order id keep PostgreSQL exact."""
    from mgrecs.tracker.db_sink import DbSink
    from support.helpers import running

    async with connector(api_settings, mapping, pool) as syncer:
        await syncer.sync_once()
        # Put the watermark back two pages, as if their watermark writes had been lost.
        back = api.sorted_orders()[ORDERS - 2 * PAGE_SIZE - 1]
        await pool.execute(
            "UPDATE ingest_watermarks SET updated_at = $1, order_id = $2",
            datetime.fromisoformat(back["updated_at"]),
            back["id"],
        )
        resent = await syncer.sync_once()
    assert resent.published == 2 * PAGE_SIZE
    assert len(await published(api_settings)) == ORDERS + 2 * PAGE_SIZE

    async with running(DbSink(api_settings)):
        await eventually(lambda: caught_up(api_settings, DbSink.group))
    assert await pool.fetchval("SELECT count(*) FROM orders") == ORDERS
    lines = sum(len(order["items"]) for order in api.orders)
    assert await pool.fetchval("SELECT count(*) FROM order_items") == lines


async def test_a_sync_unifies_customer_ids_and_stores_its_quality_report(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    """Two upstream spellings of one customer (and a second id sharing their e-mail) come out
    as one unified id; the pass stores a data-quality report counting the malformed record."""
    first, second, third = api.sorted_orders()[:3]
    first["customer"].update(id="CUST-00042", email="Ann@Example.com")
    second["customer"].update(id="cust-0042", email=None)
    third["customer"].update(id="CUST-00977", email="ann@example.com ")
    api.faults.malformed_ids.add(api.sorted_orders()[5]["id"])
    settings = api_settings.model_copy(
        update={
            "unify_customers": True,
            "customer_id_prefixes": "CUST-",
            "merge_customers_by": "email",
            "database_url": api_settings.database_url,
        }
    )
    async with open_resolver(settings) as resolver:
        publisher = OrderPublisher(settings)
        syncer = OrderConnector(settings, mapping, pool, publisher, resolver)
        try:
            report = await syncer.sync_once()
        finally:
            await syncer.aclose()
            await publisher.close()
    by_id = {o.order_id: o for o in await published(settings)}
    customers = {by_id[o["id"]].customer.customer_id for o in (first, second, third)}
    assert customers == {"42"}
    assert by_id[third["id"]].customer.source_customer_id == "CUST-00977"
    assert by_id[first["id"]].customer.email is None  # used for merging, not published
    assert report.quality is not None and report.quality_report_id is not None
    assert report.quality.checks["invalid"].count == 1 == report.dead_lettered
    assert report.quality.lines >= ORDERS
    stored = await pool.fetchval(
        "SELECT report->>'source' FROM data_quality_reports WHERE id = $1",
        report.quality_report_id,
    )
    assert stored == "connector:company-api"


def test_the_mapping_reads_status_and_updated_at(mapping: FieldMapping) -> None:
    record = generate_orders(1)[0]
    assert map_record(record, mapping).status == "placed"  # "paid": not a listed value
    record["updated_at"] = "2026-10-02T09:00:00+02:00"
    record["status"] = "Refunded"
    record["items"][0]["status"] = "cancelled"
    order = map_record(record, mapping)
    assert (order.status, order.lines[0].status) == ("returned", "cancelled")
    assert order.updated_at == datetime(2026, 10, 2, 7, tzinfo=UTC)
    assert order.live_lines() == []


async def test_corrections_and_cancellations_upstream_reach_postgres(
    api_settings: Settings, api: FakeCompanyApi, mapping: FieldMapping, pool: asyncpg.Pool
) -> None:
    """Orders corrected, cancelled and partly returned after a first sync come again as newer
    versions; the tracker keeps the newest: only the lines that still count are stored."""
    from mgrecs.tracker.db_sink import DbSink
    from support.helpers import running

    by_id = {order["id"]: order for order in api.orders}
    corrected, cancelled, returned = "ORD-000003", "ORD-000004", "ORD-000005"
    async with connector(api_settings, mapping, pool) as syncer:
        await syncer.sync_once()
        kept = {**by_id[corrected]["items"][0], "qty": 9}
        api.touch(corrected, items=[kept])
        api.touch(cancelled, status="cancelled")
        items = by_id[returned]["items"]
        api.touch(returned, items=[{**items[0], "status": "returned"}, *items[1:]])
        again = await syncer.sync_once()
    assert again.published == 3
    async with running(DbSink(api_settings)):
        await eventually(lambda: caught_up(api_settings, DbSink.group))

    async def lines(order_id: str) -> list[tuple[str, int]]:
        rows = await pool.fetch(
            "SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY line_no",
            order_id,
        )
        return [(row[0], row[1]) for row in rows]

    assert await lines(corrected) == [(kept["sku"], 9)]
    assert await lines(cancelled) == []
    assert await lines(returned) == [(item["sku"], item["qty"]) for item in items[1:]]
    statuses = dict(await pool.fetch("SELECT order_id, status FROM orders"))
    assert statuses[cancelled] == "cancelled" and statuses[returned] == "placed"
    total = sum(len(o["items"]) for o in api.orders if o["status"] != "cancelled") - 1
    assert await pool.fetchval("SELECT count(*) FROM order_items") == total


@pytest.mark.parametrize("pagination", ["cursor", "page"])
async def test_a_stop_ends_the_pass_after_the_page_being_published(
    api_settings: Settings,
    api: FakeCompanyApi,
    mapping: FieldMapping,
    pool: asyncpg.Pool,
    pagination: str,
) -> None:
    """A SIGTERM mid-backlog: the page in hand is published and its watermark saved, no more."""
    settings = api_settings.model_copy(update={"connector_pagination": pagination})
    stop = asyncio.Event()
    stop.set()
    async with connector(settings, mapping, pool) as syncer:
        report = await syncer.sync_once(stop)
    assert (report.pages, report.published, api.page_reads) == (1, PAGE_SIZE, 1)
    tenth = api.sorted_orders()[PAGE_SIZE - 1]
    assert await load_watermark(pool, settings.connector_source) == Position(
        datetime.fromisoformat(tenth["updated_at"]), tenth["id"]
    )
    assert len(await published(settings)) == PAGE_SIZE
