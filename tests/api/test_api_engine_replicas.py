"""The api with several engine replicas in `MGRECS_PERSONALIZE_ENDPOINT_URL` (comma
separated, nothing in front of them): its real-time calls are spread over all of them."""

from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.settings import Settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from support.helpers import asgi_client, serve


class FakeReplica:
    """A stand-in for one engine replica (outside the system under test): answers
    GetPersonalizedRanking in the botocore rest-json shape and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.app = FastAPI()
        self.app.post("/personalize-ranking")(self.ranking)

    async def ranking(self, request: Request) -> JSONResponse:
        self.calls += 1
        body: dict[str, Any] = await request.json()
        items = [{"itemId": pid, "score": 0.5} for pid in body["inputList"]]
        return JSONResponse({"personalizedRanking": items, "recommendationId": "RID"})


@pytest.mark.parametrize("replicas", [1, 2, 3])
async def test_calls_go_round_robin_over_the_replicas(
    replicas: int, settings: Settings, pool: asyncpg.Pool
) -> None:
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    fakes = [FakeReplica() for _ in range(replicas)]
    ports = [free_port() for _ in fakes]
    urls = ", ".join(f"http://127.0.0.1:{port}" for port in ports)
    app = create_app(settings.model_copy(update={"personalize_endpoint_url": urls}))
    rounds = 2
    async with AsyncExitStack() as stack:
        for fake, port in zip(fakes, ports, strict=True):
            await stack.enter_async_context(serve(fake.app, port))
        client = await stack.enter_async_context(asgi_client(app))
        for _ in range(rounds * replicas):
            response = await client.post("/v1/users/c1/rank", json={"product_ids": ["p1"]})
            assert response.json()["source"] == "realtime"
    assert [fake.calls for fake in fakes] == [rounds] * replicas
