"""An order's whole journey: ingest → orders → tracker → PostgreSQL and engine → batch →
cache → api, every service on real PostgreSQL and a real broker, the engine reached with
the real aioboto3 client.

The data are built so the region page's answer is known without looking at the model: the
catalogue is smaller than a recommendation list, so every customer is recommended every
product they have not bought, and a product's match rate in the region is the share of the
region's customers who have not bought it.
"""

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from mgrecs.api.app import create_app as create_api
from mgrecs.batch.worker import BatchWorker
from mgrecs.common import topics
from mgrecs.common.channels import publish_tick
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine
from mgrecs.ingest.app import create_app as create_ingest
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from support.helpers import engine_stats, eventually, read_topic, running, serve

# customer -> products bought, in region "north"; two more customers in "south"
NORTH = {
    "c0": ["P1", "P2", "P3"],
    "c1": ["P2", "P3"],
    "c2": ["P2", "P3", "P6"],
    "c3": ["P2", "P3", "P6"],
    "c4": ["P2", "P3", "P6"],
    "c5": ["P3", "P6"],
    "c6": ["P3", "P6"],
    "c7": ["P3", "P6"],
    "c8": ["P4"],
    "c9": ["P4"],
}
SOUTH = {"s0": ["P1"], "s1": ["P1", "P4"]}
# match rate in north = customers who did not buy it / 10
EXPECTED_NORTH = {
    "P1": (90.0, "High"),
    "P4": (80.0, "High"),
    "P2": (50.0, "Medium"),
    "P6": (40.0, "Medium"),
    "P3": (20.0, "Low"),
}


def _orders(now: datetime) -> list[dict[str, object]]:
    orders = []
    for region, customers in (("north", NORTH), ("south", SOUTH)):
        for number, (customer, products) in enumerate(customers.items()):
            orders.append(
                {
                    "order_id": f"o-{customer}",
                    "ordered_at": (now - timedelta(days=number + 1)).isoformat(),
                    "customer": {"customer_id": customer, "region": region, "age": 30 + number},
                    "lines": [
                        {
                            "product_id": product,
                            "quantity": 1 + line % 2,
                            "price": "10.00",
                            "category": "grocery",
                            "product_name": f"Product {product}",
                        }
                        for line, product in enumerate(products)
                    ],
                }
            )
    return orders


@contextlib.asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """Every service of the pipeline running against the test's database and topics."""
    async with (
        serve(create_engine(settings), settings.engine_port) as engine,
        serve(create_ingest(settings), settings.ingest_port) as ingest,
        serve(create_api(settings), settings.api_port) as api,
        running(DbSink(settings)),
        running(EventsSink(settings)),
        running(BatchWorker(settings)),
    ):
        yield {"engine": engine, "ingest": ingest, "api": api}


async def test_orders_travel_from_ingest_to_the_region_page(settings: Settings, pool) -> None:
    orders = _orders(datetime.now(UTC))
    lines = sum(len(order["lines"]) for order in orders)  # type: ignore[arg-type]
    assert (len(orders), lines) == (12, 25)

    async with pipeline(settings) as urls, httpx.AsyncClient(timeout=30) as client:
        # a malformed batch is refused whole, with the reason, and publishes nothing
        bad = json.loads(json.dumps(orders[:2]))
        bad[1]["lines"][0]["quantity"] = -1
        refused = await client.post(f"{urls['ingest']}/v1/orders", json={"orders": bad})
        assert refused.status_code == 422
        assert "quantity" in refused.text

        accepted = await client.post(f"{urls['ingest']}/v1/orders", json={"orders": orders})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["accepted"] == 12
        # the same orders again (an upstream retry) must change nothing
        again = await client.post(f"{urls['ingest']}/v1/orders", json={"orders": orders[:4]})
        assert again.status_code == 202

        async def rows() -> tuple[int, ...] | None:
            counts = tuple(
                await pool.fetchrow(
                    """SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products),
                          (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)"""
                )
            )
            return counts if counts[3] >= lines else None

        assert await eventually(rows) == (12, 5, 12, 25)

        async def every_event_received() -> dict[str, int] | None:
            stats = await engine_stats(urls["engine"])
            return stats if stats["events_received"] >= lines else None

        stats = await eventually(every_event_received)
        assert stats["events_received"] == 25
        assert stats["users_with_events"] == 12
        first_four_lines = sum(len(order["lines"]) for order in orders[:4])  # type: ignore[arg-type]
        await eventually(lambda: _duplicates_seen(urls["engine"], first_four_lines))

        for kind in ("retrain", "infer"):
            tick_id = (await publish_tick(settings, kind)).tick_id
            await eventually(
                lambda tick_id=tick_id: pool.fetchval(
                    "SELECT finished_at IS NOT NULL FROM processed_ticks WHERE tick_id = $1",
                    tick_id,
                ),
                timeout=60,
            )
        assert await pool.fetchval("SELECT count(*) FROM offline_user_recommendations") == 12
        cached_at = await pool.fetchval("SELECT min(updated_at) FROM offline_user_recommendations")
        assert cached_at is not None

        region = await client.get(f"{urls['api']}/v1/regions/north/recommendations")
        assert region.status_code == 200, region.text
        body = region.json()
        assert body["sample_size"] == 10
        got = {item["product_id"]: (item["match_rate"], item["affinity"]) for item in body["items"]}
        assert got == EXPECTED_NORTH
        assert [item["product_id"] for item in body["items"]][:2] == ["P1", "P4"]
        assert all(0.0 <= item["mean_score"] <= 1.0 for item in body["items"])

        user = (await client.get(f"{urls['api']}/v1/users/c8/recommendations")).json()
        assert user["source"] == "cache"
        assert {item["product_id"] for item in user["items"]} == {"P1", "P2", "P3", "P6"}

        # c8's own order first (placed 9 days ago), scored with the statistics the retrain
        # stored for the active version; then its cached discovery list
        again = await client.get(f"{urls['api']}/v1/users/c8/buy-again", params={"limit": 5})
        assert again.status_code == 200, again.text
        items = again.json()["items"]
        assert [(i["product_id"], i["slot"], i["reason"]) for i in items][:1] == [
            ("P4", "buy-again", "bought once, 9 days ago")
        ]
        assert [i["slot"] for i in items[1:]] == ["cache"] * 4
        assert {i["product_id"] for i in items[1:]} == {"P1", "P2", "P3", "P6"}
        active = await pool.fetchval("SELECT version FROM model_versions WHERE active")
        assert again.json()["repurchase_version"] == active

        similar = (await client.get(f"{urls['api']}/v1/products/P2/similar")).json()
        assert similar["items"][0]["product_id"] == "P3"  # bought together by 5 customers

        for missing in (
            "/v1/users/nobody/recommendations",
            "/v1/users/nobody/buy-again",
            "/v1/products/nothing/similar",
            "/v1/regions/atlantis/recommendations",
        ):
            response = await client.get(f"{urls['api']}{missing}")
            assert response.status_code == 404
            assert response.json()["detail"]

    # nothing was dead-lettered: every order was valid
    assert (
        await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS_DLQ, settings)) == []
    )


async def _duplicates_seen(engine: str, expected: int) -> bool:
    stats = await engine_stats(engine)
    return bool(stats["duplicate_events_ignored"] == expected and stats["events_received"] == 25)
