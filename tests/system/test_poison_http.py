"""Poison-proof HTTP: every request body of ingest, api and engine, arbitrary or near-valid,
is accepted or refused with a 4xx that says what is wrong; never a 5xx.

The apps run in-process (ASGI) over the test's real database and broker; the engine's
requests are signed as botocore signs them, so the bodies reach its parsing.
"""

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgrecs.api.app import create_app as create_api
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine
from mgrecs.ingest.app import create_app as create_ingest
from mgrecs.store.customers import StoredCustomer, insert_customers
from support.helpers import asgi_client
from support.poison_inputs import json_values, nasty_text, near_valid, raw_documents

ADMIN = {"X-API-Key": "admin-secret"}
PROPERTIES = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ORDER = {
    "order_id": "o-1001",
    "ordered_at": "2026-11-20T10:15:00Z",
    "customer": {
        "customer_id": "CUST-0042",
        "region": "north",
        "city": "Oslo",
        "email": "Some.One+news@gmail.com",
        "phone": "020 7946 0018",
    },
    "lines": [{"product_id": "p-7", "quantity": 2, "price": "9.90", "category": "toys"}],
}
FEEDBACK = {
    "customer_id": "c1",
    "product_id": "P0007",
    "kind": "purchase",
    "occurred_at": "2026-11-26T10:15:00Z",
    "model_version": "v1",
    "source": "cache",
    "revenue": "19.80",
}


def _assert_answered(response: httpx.Response) -> None:
    """Never a server error; a refusal says what is wrong."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.content, response.status_code


async def _post(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json", **ADMIN}
    return await client.post(path, content=body, headers=headers)


@pytest.fixture(params=["as sent", "unified"])
async def ingest(
    settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest as configured by default, and unifying customers (merged by email and phone)."""
    if request.param == "unified":
        settings.unify_customers = True
        settings.customer_id_prefixes = "CUST-,C"
        settings.merge_customers_by = "email,phone"
        settings.phone_default_region = "GB"
        settings.email_gmail_canonical = True
    async with asgi_client(create_ingest(settings)) as client:
        yield client


@pytest.fixture
async def api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    settings.api_admin_keys = ADMIN["X-API-Key"]
    async with asgi_client(create_api(settings)) as client:
        yield client


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_engine(settings)) as client:
        yield client


async def test_an_order_in_year_9999_is_refused_naming_the_field(
    ingest: httpx.AsyncClient,
) -> None:
    order = {**ORDER, "ordered_at": "9999-12-31T23:00:00-05:00"}
    response = await _post(ingest, "/v1/orders", json.dumps({"orders": [order]}).encode())
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "orders", 0, "ordered_at"]
    assert "out of range" in problem["msg"]


@PROPERTIES
@given(body=raw_documents({"orders": [ORDER]}))
async def test_ingest_orders_never_answer_5xx(ingest: httpx.AsyncClient, body: bytes) -> None:
    response = await _post(ingest, "/v1/orders", body)
    _assert_answered(response)
    if response.status_code == 422:
        assert all(problem["loc"] and problem["msg"] for problem in response.json()["detail"])


@PROPERTIES
@given(body=raw_documents({"events": [FEEDBACK]}))
async def test_api_feedback_never_answers_5xx(api: httpx.AsyncClient, body: bytes) -> None:
    _assert_answered(await _post(api, "/v1/feedback", body))


@PROPERTIES
@given(
    user=st.one_of(st.just("c1"), nasty_text.filter(bool)),
    body=raw_documents({"product_ids": ["P0007", "P0012"]}),
)
async def test_api_rank_never_answers_5xx(api: httpx.AsyncClient, user: str, body: bytes) -> None:
    path = quote(user.encode("utf-8", "surrogatepass"), safe="")  # a lone surrogate: bad UTF-8
    response = await _post(api, f"/v1/users/{path}/rank", body)
    _assert_answered(response)


@PROPERTIES
@given(
    body=st.one_of(
        raw_documents({"region": "north"}),
        raw_documents({"customer": "c1"}),
        raw_documents({"all": True}),
    )
)
async def test_api_cache_invalidation_never_answers_5xx(
    api: httpx.AsyncClient, body: bytes
) -> None:
    _assert_answered(await _post(api, "/v1/admin/cache/invalidate", body))


def _engine_bodies(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """A valid body of each Personalize operation the engine serves."""
    event = {
        "eventId": "e1",
        "eventType": "purchase",
        "itemId": "A",
        "sentAt": 1764151200,
        "eventValue": 2.0,
        "properties": json.dumps({"region": "north"}),
    }
    return {
        "/events": [
            {
                "trackingId": settings.tracking_id,
                "userId": "c1",
                "sessionId": "s1",
                "eventList": [event],
            }
        ],
        "/recommendations": [
            {
                "campaignArn": settings.user_campaign_arn,
                "userId": "c1",
                "numResults": 5,
                "context": {"region": "north"},
                "promotions": [
                    {
                        "name": "p1",
                        "percentPromotedItems": 20,
                        "filterArn": "arn:aws:personalize:us-east-1:0:filter/x",
                        "filterValues": {"CATEGORY": '"toys"'},
                    }
                ],
            },
            {"campaignArn": settings.similar_campaign_arn, "itemId": "A", "numResults": 3},
        ],
        "/personalize-ranking": [
            {
                "campaignArn": settings.ranking_campaign_arn,
                "userId": "c1",
                "inputList": ["A", "B"],
                "context": {"region": "north"},
            }
        ],
    }


def _signed(settings: Settings, path: str, body: bytes) -> dict[str, str]:
    """The headers botocore would send with `body` (SigV4 over the in-process host)."""
    request = AWSRequest(
        method="POST",
        url=f"http://api{path}",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )
    credentials = Credentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    SigV4Auth(credentials, "personalize", settings.aws_region).add_auth(request)
    return dict(request.headers.items())


@PROPERTIES
@given(data=st.data())
async def test_engine_bodies_never_answer_5xx(
    engine: httpx.AsyncClient, settings: Settings, data: st.DataObject
) -> None:
    bodies = _engine_bodies(settings)
    path = data.draw(st.sampled_from(sorted(bodies)))
    example = data.draw(st.sampled_from(bodies[path]))
    body = data.draw(
        st.one_of(
            raw_documents(example),
            near_valid(example).map(lambda doc: json.dumps(doc).encode()),
            json_values.map(lambda doc: json.dumps({**example, "eventList": [doc]}).encode()),
        )
    )
    response = await engine.post(path, content=body, headers=_signed(settings, path, body))
    _assert_answered(response)
    if response.status_code >= 400:
        assert response.status_code != 403, response.text  # the signature was right
