"""The ingest service: HTTP push and CSV backfill onto topic `orders`, and its contract."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from prometheus_client import REGISTRY

from mgrecs.cli.embedded import free_port
from mgrecs.common import topics
from mgrecs.common.kafka import BATCHING
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.ingest.app import create_app
from mgrecs.ingest.backfill import backfill_file
from mgrecs.ingest.contract import asyncapi_document, write_asyncapi
from mgrecs.ingest.publisher import OrderPublisher
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from mgrecs.tracker.feedback_sink import FeedbackSink
from mgrecs.tracker.products_sink import ProductsSink
from mgrecs.tracker.served_sink import ServedSink
from support.helpers import eventually, read_topic, running, serve
from support.orders_topic import dead_letters
from support.paths import REPO_ROOT

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)
DOCS_ASYNCAPI = REPO_ROOT / "docs" / "asyncapi.json"


def order_document(order_id: str = "o-1", customer_id: str = "c-1") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "ordered_at": "2026-11-20T10:15:00Z",
        "customer": {"customer_id": customer_id, "region": "north", "city": "Oslo"},
        "lines": [
            {"product_id": "p-7", "quantity": 2, "price": "9.90"},
            {"product_id": "p-8", "quantity": 1, "price": "120.00", "category": "toys"},
        ],
    }


@asynccontextmanager
async def ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest service on its port, and a client for it."""
    async with (
        serve(create_app(settings), settings.ingest_port) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=True) as client,
    ):
        yield client


async def orders_on_topic(settings: Settings) -> list[Any]:
    return await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS, settings))


async def test_posted_orders_are_on_the_topic_keyed_by_customer(settings: Settings) -> None:
    sample = generate(seed=1, customers=20, products=30, orders=25, anchor=ANCHOR)
    body = {"orders": [json.loads(order.model_dump_json()) for order in sample.orders]}
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json=body)
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 25,
        "order_ids": [order.order_id for order in sample.orders],
        "duplicates": [],
    }
    records = await orders_on_topic(settings)
    assert len(records) == 25
    published = {OrderEvent.model_validate_json(r.value).order_id: r for r in records}
    for order in sample.orders:
        record = published[order.order_id]
        assert record.key == order.customer.customer_id.encode()
        assert OrderEvent.model_validate_json(record.value) == order


KEY = "push-key-0123456789"


def _with_key(settings: Settings) -> Settings:
    settings.ingest_api_keys = f"other-key, {KEY}"
    return settings


async def test_push_needs_a_configured_key_and_the_rest_stays_open(settings: Settings) -> None:
    body = {"orders": [order_document()]}
    with structlog.testing.capture_logs() as logs:
        async with ingest(_with_key(settings)) as client:
            missing = await client.post("/v1/orders", json=body)
            wrong = await client.post("/v1/orders", json=body, headers={"X-API-Key": KEY + "x"})
            wrong_bearer = await client.post(
                "/v1/orders", json=body, headers={"Authorization": "Bearer nope"}
            )
            basic = await client.post("/v1/orders", json=body, headers={"Authorization": KEY})
            open_paths = [await client.get(path) for path in ("/healthz", "/metrics")]
            open_paths.append(await client.get("/asyncapi.json"))
            metrics = (await client.get("/metrics")).text
            with_header = await client.post("/v1/orders", json=body, headers={"X-API-Key": KEY})
            bearer = await client.post(
                "/v1/orders",
                json={"orders": [order_document("o-2")]},
                headers={"Authorization": f"bearer {KEY}"},
            )
    for response in (missing, wrong, wrong_bearer, basic):
        assert response.status_code == 401, response.text
        assert "API key" in response.json()["detail"]
    assert missing.json()["detail"].startswith("missing")
    assert wrong.json()["detail"].startswith("wrong")
    assert [r.status_code for r in open_paths] == [200, 200, 200]
    assert 'mgrecs_ingest_requests_rejected_total{reason="unauthorized"}' in metrics
    assert with_header.status_code == 202, with_header.text
    assert bearer.status_code == 202, bearer.text
    published = [OrderEvent.model_validate_json(r.value) for r in await orders_on_topic(settings)]
    assert sorted(o.order_id for o in published) == ["o-1", "o-2"]
    assert [e for e in logs if e["event"] == "push_unauthorized"]
    assert not [e for e in logs if e["event"] == "ingest_open"]
    assert KEY not in repr(logs) and "nope" not in repr(logs), "a key was logged"


async def test_without_a_configured_key_the_push_is_open_and_warned_about(
    settings: Settings,
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with ingest(settings) as client:
            response = await client.post("/v1/orders", json={"orders": [order_document()]})
    assert response.status_code == 202, response.text
    assert [e["log_level"] for e in logs if e["event"] == "ingest_open"] == ["warning"]


def _body_of(size: int) -> bytes:
    """A valid batch of at least `size` bytes (a long product name pads it)."""
    order = order_document()
    order["lines"][0]["product_name"] = "x" * 500
    count = size // len(json.dumps(order)) + 1
    orders = [{**order, "order_id": f"o-{n}"} for n in range(count)]
    return json.dumps({"orders": orders}).encode()


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_over_the_byte_limit_is_refused_with_413(settings: Settings) -> None:
    settings.max_request_bytes = 4000
    big, small = _body_of(4001), _body_of(3000)
    assert len(small) <= 4000 < len(big)
    headers = {"content-type": "application/json"}
    async with ingest(settings) as client:
        declared = await client.post("/v1/orders", content=big, headers=headers)
        chunked = await client.post("/v1/orders", content=_chunks(big), headers=headers)
        chunked_small = await client.post("/v1/orders", content=_chunks(small), headers=headers)
        health = await client.get("/healthz")
    for refused in (declared, chunked):
        assert refused.status_code == 413, refused.text
        assert "4000 bytes" in refused.json()["detail"]
    assert "content-length" not in chunked.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert chunked_small.status_code == 202, chunked_small.text
    assert health.status_code == 200
    published = await orders_on_topic(settings)
    assert len(published) == len(json.loads(small)["orders"])


async def test_the_key_is_checked_before_the_body_size(settings: Settings) -> None:
    settings.max_request_bytes = 100
    async with ingest(_with_key(settings)) as client:
        response = await client.post("/v1/orders", json={"orders": [order_document()]})
    assert response.status_code == 401


async def test_identical_repeats_in_a_batch_are_published_once(settings: Settings) -> None:
    first, second = order_document("o-1"), order_document("o-2")
    padded = {**first, "order_id": " o-1 ", "ordered_at": "2026-11-20T11:15:00+01:00"}
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json={"orders": [first, second, padded, first]})
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 2,
        "order_ids": ["o-1", "o-2"],
        "duplicates": ["o-1", "o-1"],
    }
    published = [OrderEvent.model_validate_json(r.value) for r in await orders_on_topic(settings)]
    assert sorted(o.order_id for o in published) == ["o-1", "o-2"]


async def test_a_repeated_order_id_with_other_content_is_refused(settings: Settings) -> None:
    changed = _with_line(order_document("o-1"), quantity=5)
    batch = [order_document("o-1"), order_document("o-2"), changed]
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json={"orders": batch})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "orders", 2, "order_id"]
    assert "indexes 0 and 2" in problem["msg"] and "'o-1'" in problem["msg"]
    assert await orders_on_topic(settings) == []


async def test_two_versions_of_an_order_in_a_batch_are_both_published(
    settings: Settings,
) -> None:
    first = {**order_document("o-1"), "updated_at": "2026-11-20T10:15:00Z"}
    cancelled = {**first, "status": "cancelled", "updated_at": "2026-11-21T08:00:00Z"}
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json={"orders": [cancelled, first]})
    assert response.status_code == 202, response.text
    published = [OrderEvent.model_validate_json(r.value) for r in await orders_on_topic(settings)]
    assert sorted(o.status for o in published) == ["cancelled", "placed"]


async def test_ids_with_surrounding_whitespace_are_trimmed(settings: Settings) -> None:
    document = order_document(" o-9\t", " C001 ")
    document["customer"]["region"] = " north "
    document["lines"][0]["product_id"] = "\u00a0p-7 "
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json={"orders": [document]})
        inner = order_document("o-10", "C\u0001 1")
        refused = await client.post("/v1/orders", json={"orders": [inner]})
    assert response.status_code == 202, response.text
    assert response.json()["order_ids"] == ["o-9"]
    (record,) = await orders_on_topic(settings)
    order = OrderEvent.model_validate_json(record.value)
    assert record.key == b"C001"
    assert (order.order_id, order.customer.customer_id, order.customer.region) == (
        "o-9",
        "C001",
        "north",
    )
    assert [line.product_id for line in order.lines] == ["p-7", "p-8"]
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "orders", 0, "customer", "customer_id"]


def _written_by_db_sink() -> float:
    return REGISTRY.get_sample_value("mgrecs_tracker_written_total", {"sink": "db"}) or 0.0


async def _reached(value: Callable[[], float], target: float) -> bool:
    return value() >= target


async def test_posting_a_batch_twice_lands_once_in_postgresql(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    sample = generate(seed=2, customers=8, products=12, orders=15, anchor=ANCHOR)
    body = {"orders": [json.loads(order.model_dump_json()) for order in sample.orders]}
    async with ingest(_with_key(settings)) as client:
        for _ in range(2):
            response = await client.post("/v1/orders", json=body, headers={"X-API-Key": KEY})
            assert response.status_code == 202, response.text
    assert len(await orders_on_topic(settings)) == 30  # both copies reached the broker

    written = _written_by_db_sink()
    async with running(DbSink(settings)):
        # the sink handled both copies (counting them), not just the first
        await eventually(lambda: _reached(_written_by_db_sink, written + 30))

    orders = await pool.fetch("SELECT order_id, count(*) AS n FROM orders GROUP BY order_id")
    assert {row["order_id"]: row["n"] for row in orders} == {o.order_id: 1 for o in sample.orders}
    items = await pool.fetch(
        "SELECT order_id, line_no, product_id, quantity FROM order_items ORDER BY order_id, line_no"
    )
    assert [tuple(item) for item in items] == sorted(
        (o.order_id, n, line.product_id, line.quantity)
        for o in sample.orders
        for n, line in enumerate(o.lines, start=1)
    )
    assert await dead_letters(settings) == []


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    target = document
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return document


def _with_line(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document["lines"][0].update(changes)
    return document


INVALID_BODIES = {
    "missing customer id": {"orders": [_without(order_document(), "customer", "customer_id")]},
    "negative quantity": {"orders": [_with_line(order_document(), quantity=-1)]},
    "naive datetime": {"orders": [{**order_document(), "ordered_at": "2026-11-20T10:15:00"}]},
    "empty lines": {"orders": [{**order_document(), "lines": []}]},
    "no orders": {"orders": []},
    "not a batch": [order_document()],
}


@pytest.mark.parametrize("case", sorted(INVALID_BODIES))
async def test_invalid_orders_are_refused_with_the_reason(settings: Settings, case: str) -> None:
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json=INVALID_BODIES[case])
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail and all(problem["msg"] for problem in detail)
    assert await orders_on_topic(settings) == []


async def test_naive_datetime_is_explained(settings: Settings) -> None:
    async with ingest(settings) as client:
        response = await client.post("/v1/orders", json=INVALID_BODIES["naive datetime"])
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "orders", 0, "ordered_at"]
    assert "timezone" in problem["msg"]


@pytest.mark.parametrize(
    "content", [b"{not json", b"\xff\xfe", b""], ids=["broken", "binary", "empty"]
)
async def test_a_body_that_is_not_json_is_refused(settings: Settings, content: bytes) -> None:
    async with ingest(settings) as client:
        response = await client.post(
            "/v1/orders", content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]
    assert await orders_on_topic(settings) == []


async def test_too_many_orders_in_one_request_are_refused(settings: Settings) -> None:
    settings.max_request_orders = 3
    body = {"orders": [order_document(f"o-{i}") for i in range(4)]}
    async with ingest(settings) as client:
        refused = await client.post("/v1/orders", json=body)
        accepted = await client.post("/v1/orders", json={"orders": body["orders"][:3]})
    assert refused.status_code == 422
    assert "at most 3 orders" in refused.json()["detail"][0]["msg"]
    assert accepted.status_code == 202
    assert len(await orders_on_topic(settings)) == 3


async def test_unreachable_broker_gives_503(settings: Settings) -> None:
    down = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    async with ingest(down) as client:
        posted = await client.post("/v1/orders", json={"orders": [order_document()]})
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert posted.status_code == 503
    assert "unavailable" in posted.json()["detail"]
    assert health.status_code == 200  # alive: restarting would not bring the broker back
    assert ready.status_code == 503


async def test_health_metrics_and_contract(settings: Settings) -> None:
    async with ingest(settings) as client:
        await client.post("/v1/orders", json={"orders": [order_document()]})
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
        contract = await client.get("/asyncapi.json")
    assert ready.status_code == 200 and ready.json()["kafka"] == "ok"
    assert 'mgrecs_ingest_orders_accepted_total{source="http"}' in metrics.text
    document = contract.json()
    assert document["asyncapi"].startswith("3.")
    assert {"orders", "orders.dlq"} <= set(document["channels"])
    schemas = document["components"]["schemas"]
    assert schemas["OrderEvent"]["required"] == ["order_id", "ordered_at", "customer", "lines"]
    assert "DeadLetter" in schemas
    assert "Key: the customer id" in document["info"]["description"]


def test_the_contract_shows_every_topic_with_its_consumer_groups() -> None:
    document = asyncapi_document()
    channels = document["channels"].values()
    assert {channel["address"] for channel in channels} == set(topics.ALL_TOPICS)
    operations = document["operations"].items()
    received = {name for name, operation in operations if operation["action"] == "receive"}
    sinks = {
        f"{sink.channel.topic}:{sink.group}"
        for sink in (DbSink, EventsSink, FeedbackSink, ProductsSink, ServedSink)
    }
    batch = {"schedule-ticks:mgrecs-batch", "infer-shards:mgrecs-batch-shards"}
    assert received == sinks | batch


def test_committed_asyncapi_document_is_up_to_date(tmp_path: Path) -> None:
    write_asyncapi(tmp_path / "asyncapi.json")
    assert (tmp_path / "asyncapi.json").read_text() == DOCS_ASYNCAPI.read_text(), (
        "docs/asyncapi.json is stale: run `mgrecs asyncapi`"
    )


@pytest.mark.parametrize("customer_columns", [False, True], ids=["flat", "with-customers"])
async def test_backfill_publishes_exactly_the_orders_of_the_file(
    settings: Settings, tmp_path: Path, customer_columns: bool
) -> None:
    sample = generate(seed=5, customers=60, products=40, orders=400, anchor=ANCHOR)
    path = tmp_path / "orders.csv"
    lines = sample.write_csv(path, customer_columns=customer_columns)
    progress: list[int] = []

    summary = await backfill_file(path, settings, on_progress=progress.append)

    assert (summary.lines_read, summary.orders_published, summary.lines_rejected) == (lines, 400, 0)
    assert progress[-1] == lines
    records = await orders_on_topic(settings)
    published = {}
    for record in records:
        order = OrderEvent.model_validate_json(record.value)
        assert record.key == order.key
        published[order.order_id] = order
    assert len(records) == len(published) == 400
    for order in sample.orders:
        expected = order
        if not customer_columns:
            customer = order.customer.model_copy(update={"city": None, "age": None, "gender": None})
            expected = order.model_copy(update={"customer": customer})
        assert published[order.order_id] == expected
    assert await dead_letters(settings) == []


BROKEN_CSV = """\
order_id,customer_id,product_id,product_name,category,price,quantity,ordered_at,region
O1,C1,P1,Mug,home,4.50,1,2026-11-01T10:00:00Z,north
O1,C1,P2,Tea,beverages,3.20,2,2026-11-01T10:00:00Z,north
O2,C2,P1,Mug,home,4.50,-3,2026-11-02T10:00:00Z,south
O2,C2,P3,Pen,office,1.00,1,2026-11-02T10:00:00Z,south
O3,C3,P2,Tea,beverages,3.20,1,2026-11-03 10:00:00,east
O4,C4,P9,Lamp,home,abc,1,2026-11-04T10:00:00Z,west
,C5,P1,Mug,home,4.50,1,2026-11-05T10:00:00Z,west
O6,C6,P1,Mug,home,4.50,1,2026-11-06T10:00:00Z,central,extra
O7,C7,P2,Tea,beverages,3.20,1,2026-11-07T10:00:00Z,central
"""


async def test_backfill_rejects_broken_orders_to_the_dead_letter_topic(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN_CSV)

    summary = await backfill_file(path, settings)

    assert summary.lines_read == 9
    assert summary.orders_published == 2
    assert summary.lines_rejected == 6
    assert len(summary.errors) == 5
    published = [OrderEvent.model_validate_json(r.value) for r in await orders_on_topic(settings)]
    assert sorted(o.order_id for o in published) == ["O1", "O7"]
    assert [len(o.lines) for o in sorted(published, key=lambda o: o.order_id)] == [2, 1]
    letters = {letter.offset: letter for letter in await dead_letters(settings)}
    assert sorted(letters) == [4, 6, 7, 8, 9]  # first file line of each rejected order
    assert "line 4: quantity" in letters[4].reason
    assert letters[4].payload.count("\n") == 3  # header and both rows of order O2
    assert "line 6: ordered_at" in letters[6].reason and "timezone" in letters[6].reason
    assert "line 7: price" in letters[7].reason
    assert "order_id" in letters[8].reason
    assert "more fields" in letters[9].reason
    assert all(letter.source_topic == "backfill:broken.csv" for letter in letters.values())
    assert letters[4].key == "C2"


async def test_backfill_refuses_a_file_without_the_flat_header(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text(",".join(h for h in COLUMNS if h != "price") + "\n")
    with pytest.raises(ValueError, match="price"):
        await backfill_file(path, settings)


async def test_the_docs_page_serves_swagger_ui_itself_no_cdn(settings: Settings) -> None:
    async with ingest(settings) as client:
        page = await client.get("/docs")
        assets = [
            await client.get(f"/static-offline-docs/{name}")
            for name in ("swagger-ui-bundle.js", "swagger-ui.css")
        ]
    assert page.status_code == 200
    assert "/static-offline-docs/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert [asset.status_code for asset in assets] == [200, 200]


async def test_orders_beyond_one_record_batch_land_in_order_per_customer(
    settings: Settings,
) -> None:
    """Three customers' 600 orders of 3 KiB: several full batches per partition, none lost,
    each customer's orders on one partition in the order they were published."""
    lines = [{"product_id": f"p-{n}", "quantity": 1, "price": "1.00"} for n in range(40)]
    orders = [
        OrderEvent.model_validate(order_document(f"o-{n}", f"c-{n % 3}") | {"lines": lines})
        for n in range(600)
    ]
    publisher = OrderPublisher(settings)
    try:
        await publisher.publish(orders)
    finally:
        await publisher.close()
    records = await orders_on_topic(settings)
    assert sum(len(r.value) for r in records) > 3 * BATCHING["max_batch_size"]
    by_customer: dict[bytes, list[Any]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_customer.setdefault(record.key, []).append(record)
    for customer, published in by_customer.items():
        assert len({r.partition for r in published}) == 1
        ids = [OrderEvent.model_validate_json(r.value).order_id for r in published]
        assert ids == [o.order_id for o in orders if o.key == customer]
    assert sum(len(p) for p in by_customer.values()) == 600
