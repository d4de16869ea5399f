"""`POST /v1/users/{id}/rank`: the engine's personalized ranking, popularity when it is down."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import AWS_RECIPE, RECIPE, ModelVersion, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import asgi_client, serve


class FakeRanking:
    """A stand-in for the Personalize runtime (outside the system under test): answers
    GetPersonalizedRanking in the botocore rest-json shape, reversing the input list."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/personalize-ranking")(self.ranking)

    async def ranking(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        ranked = list(reversed(body["inputList"]))
        items = [{"itemId": pid, "score": round(1 - n / 10, 2)} for n, pid in enumerate(ranked)]
        return JSONResponse({"personalizedRanking": items, "recommendationId": "RID-2"})


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """Customers c1, c2, c3; recent distinct buyers: p3 3, p1 1, p2 none (200 days ago)."""
    await insert_products(pool, [StoredProduct(p, p) for p in ("p1", "p2", "p3")])
    await insert_customers(pool, [StoredCustomer(c, "north") for c in ("c1", "c2", "c3")])
    now = datetime.now(UTC)
    orders = [("o1", "c1", 1, "p3"), ("o2", "c2", 2, "p3"), ("o3", "c3", 3, "p3")]
    orders += [("o4", "c1", 4, "p1"), ("o5", "c2", 200, "p2")]
    await insert_orders(
        pool,
        [
            StoredOrder(order_id, customer_id, now - timedelta(days=days_ago), [StoredLine(0, pid)])
            for order_id, customer_id, days_ago, pid in orders
        ],
    )


async def test_rank_through_the_engine(
    shop: None, client: httpx.AsyncClient, settings: Settings
) -> None:
    fake = FakeRanking()
    async with serve(fake.app, settings.engine_port):
        response = await client.post(
            "/v1/users/c1/rank", json={"product_ids": ["p1", "p2", "p3", "p1"]}
        )
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "c1",
        "source": "realtime",
        "items": [
            {"product_id": "p3", "score": 1.0, "reason": None, "reason_product_ids": []},
            {"product_id": "p2", "score": 0.9, "reason": None, "reason_product_ids": []},
            {"product_id": "p1", "score": 0.8, "reason": None, "reason_product_ids": []},
        ],
        "model_version": None,  # nothing trained yet
    }
    assert fake.requests == [
        {
            "campaignArn": settings.ranking_campaign_arn,
            "userId": "c1",
            "inputList": ["p1", "p2", "p3"],
        }
    ]


async def test_rank_by_popularity_when_the_engine_is_down(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/users/c1/rank", json={"product_ids": ["p2", "p1", "p3"]})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "popular" and body["model_version"] is None
    assert [(i["product_id"], i["score"]) for i in body["items"]] == [
        ("p3", 1.0),
        ("p1", 0.3333),
        ("p2", 0.0),
    ]


async def test_a_ranking_names_the_version_the_mode_serves(
    shop: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    """In AWS mode the ranking campaign serves the active aws-personalize version (the
    campaigns follow it): the answer names it; self-hosted, the engine's active version."""
    for version, recipe in (("v-engine", RECIPE), ("v-aws", AWS_RECIPE)):
        await register(pool, ModelVersion(version, recipe, "-", 3, 3, 5), promote=True, reason="t")
    fake = FakeRanking()
    async with serve(fake.app, settings.engine_port):
        for mode, expected in (("aws", "v-aws"), ("self-hosted", "v-engine")):
            app = create_app(settings.model_copy(update={"batch_mode": mode}))
            async with asgi_client(app) as client:
                response = await client.post("/v1/users/c1/rank", json={"product_ids": ["p1"]})
            assert response.json()["model_version"] == expected


async def test_rank_for_an_unknown_customer_is_404(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/users/nobody/rank", json={"product_ids": ["p1"]})
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown user nobody"}


@pytest.mark.parametrize(
    "body",
    [
        {"product_ids": []},
        {"product_ids": [f"p{n}" for n in range(501)]},
        {"product_ids": ["bad\nid"]},
        {},
    ],
)
async def test_rank_refuses_bad_lists_naming_the_parameter(
    shop: None, client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/users/c1/rank", json=body)
    assert response.status_code == 422
    assert "product_ids" in response.json()["detail"]
