"""`POST /v1/products` on ingest: catalogue records land on topic `products` keyed by product
id, behind the same key, body limit and validation as the orders push; any body is a 2xx or
a 4xx that says what is wrong."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from mgrecs.cli.embedded import free_port
from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.app import create_app
from support.helpers import asgi_client, read_topic
from support.poison_inputs import raw_documents

KEY = "push-key-0123456789"
PRODUCT: dict[str, Any] = {
    "product_id": "P0201",
    "name": "Eco Lamp 201",
    "category": "home-garden",
    "price": "39.90",
    "margin": "18.40",
    "in_stock": True,
    "launched_at": "2026-11-01T00:00:00Z",
    "attributes": {"brand": "Lumo", "size": "M"},
    "updated_at": "2026-11-20T10:15:00Z",
}


@asynccontextmanager
async def ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings)) as client:
        yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with ingest(settings) as opened:
        yield opened


async def products_on_topic(settings: Settings) -> list[Any]:
    return await read_topic(settings.kafka_bootstrap, topics.topic(topics.PRODUCTS, settings))


async def test_posted_products_are_on_the_topic_keyed_by_product(settings: Settings) -> None:
    second = {"product_id": "P0202", "name": "Never sold yet", "price": 5}
    async with ingest(settings) as client:
        response = await client.post("/v1/products", json={"products": [PRODUCT, second]})
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2, "product_ids": ["P0201", "P0202"]}
    records = {
        r.key: ProductEvent.model_validate_json(r.value) for r in await products_on_topic(settings)
    }
    assert set(records) == {b"P0201", b"P0202"}
    lamp = records[b"P0201"]
    assert (str(lamp.cost), lamp.margin, lamp.attributes) == ("21.50", None, PRODUCT["attributes"])
    assert records[b"P0202"].updated_at is not None  # stamped when received
    assert 'mgrecs_ingest_products_accepted_total{source="http"} 2.0' in metrics


async def test_the_products_push_needs_the_key(settings: Settings) -> None:
    settings.ingest_api_keys = KEY
    async with ingest(settings) as client:
        missing = await client.post("/v1/products", json={"products": [PRODUCT]})
        good = await client.post(
            "/v1/products", json={"products": [PRODUCT]}, headers={"X-API-Key": KEY}
        )
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    assert good.status_code == 202


async def test_invalid_products_are_refused_naming_the_field(settings: Settings) -> None:
    cases = {
        "price": {**PRODUCT, "price": "-3"},
        "product_id": {**PRODUCT, "product_id": "P\u200b1"},
        "attributes": {**PRODUCT, "attributes": {"brand": {"nested": True}}},
        "launched_at": {**PRODUCT, "launched_at": "2026-11-01T00:00:00"},
    }
    async with ingest(settings) as client:
        for field, document in cases.items():
            response = await client.post("/v1/products", json={"products": [document]})
            assert response.status_code == 422, (field, response.text)
            problems = response.json()["detail"]
            assert any(field in problem["loc"] for problem in problems), (field, problems)
        disagreeing = await client.post(
            "/v1/products", json={"products": [{**PRODUCT, "cost": "1.00"}]}
        )
        empty = await client.post("/v1/products", json={"products": []})
        settings_limit = settings.max_request_products
        many = await client.post(
            "/v1/products",
            json={"products": [{"product_id": f"P{n}"} for n in range(settings_limit + 1)]},
        )
    assert disagreeing.status_code == 422 and "disagrees" in disagreeing.text
    assert empty.status_code == 422
    assert many.status_code == 422 and "at most" in many.text
    assert await products_on_topic(settings) == []


async def test_a_body_over_the_limit_is_413(settings: Settings) -> None:
    settings.max_request_bytes = 1000
    body = json.dumps({"products": [{**PRODUCT, "name": "x" * 400}] * 3})
    async with ingest(settings) as client:
        response = await client.post(
            "/v1/products", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


async def test_an_unreachable_broker_gives_503(settings: Settings) -> None:
    down = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    async with ingest(down) as client:
        response = await client.post("/v1/products", json={"products": [PRODUCT]})
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=raw_documents({"products": [PRODUCT]}))
async def test_any_body_is_accepted_or_refused_with_a_message(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/v1/products", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202 or 400 <= response.status_code < 500, response.text
    if response.status_code == 202:
        assert response.json()["accepted"] == len(response.json()["product_ids"]) >= 1
    else:
        detail = response.json()["detail"]
        assert detail
        if response.status_code == 422:
            assert all(problem["loc"] and problem["msg"] for problem in detail)
