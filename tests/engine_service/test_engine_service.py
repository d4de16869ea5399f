"""The self-hosted Personalize stand-in, driven by the real aioboto3 clients over HTTP."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.repository import Repository
from mgrecs.common.personalize import events_client, runtime_client
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine_service import sigv4
from mgrecs.engine_service.app import create_app
from mgrecs.engine_service.errors import AwsError
from mgrecs.engine_service.registry import ModelRegistry
from mgrecs.store.model_versions import AWS_RECIPE, ModelVersion, mode_recipe, register
from mgrecs.tracker.events import put_events_calls
from support.engine import bundle_lines, item_ids, put_purchase, recommend, register_model
from support.helpers import engine_stats, eventually, ready, serve

NOW = datetime.now(UTC)


async def test_the_api_names_the_version_the_engine_serves(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """Two lineages with an active version each (the trainer's and AWS mode's, promoted
    later): the api's realtime answers name the version the engine serves, not the newest
    promotion (`mgrecs.store.model_versions`, the one definition of the active model)."""
    await register_model(pool, settings, "v-served", bundle_lines())
    aws = ModelVersion("v-aws", AWS_RECIPE, "arn:aws:personalize:solution/v-aws", 1, 1, 1)
    await register(pool, aws, promote=True, reason="the AWS lineage's own")
    registry = ModelRegistry(settings)
    assert await registry.refresh(pool)
    assert registry.version == "v-served"
    assert await Repository(pool).active_model_version() == "v-served"
    # In AWS mode the campaigns serve the AWS lineage: the api names its version instead.
    aws_mode = Settings(batch_mode="aws")
    assert await Repository(pool, 0.0, mode_recipe(aws_mode)).active_model_version() == "v-aws"


@pytest.fixture
def engine_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"engine_model_poll_seconds": 0.2})


@pytest.fixture
async def engine(engine_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The engine serving a model trained on `bundle_lines`."""
    await register_model(pool, engine_settings, "v1", bundle_lines())
    async with serve(create_app(engine_settings), engine_settings.engine_port) as url:
        yield url


# -- the wire protocol through the real clients ---------------------------------------------


async def test_known_user_gets_recommendations_without_what_they_bought(
    engine: str, engine_settings: Settings
) -> None:
    response = await recommend(engine_settings, userId="ab0", numResults=3)
    # ab0 bought A and B: nothing co-occurs, so regional popularity (X first) fills the list.
    assert item_ids(response) == ["X", "S"]
    assert response["recommendationId"]
    assert [item["reason"] for item in response["itemList"]] == [["popular in north"], ["popular"]]
    loner = await recommend(engine_settings, userId="x0", numResults=2)
    assert item_ids(loner) == ["A", "B"]  # X excluded; A and B tie, broken by id
    assert all(0.0 <= item["score"] <= 1.0 for item in loner["itemList"])


async def test_put_events_changes_the_next_answer_at_once(
    engine: str, engine_settings: Settings
) -> None:
    before = await recommend(engine_settings, userId="newcomer", numResults=3)
    assert item_ids(before)[0] == "X"  # unknown user: popularity
    await put_purchase(engine_settings, "newcomer", "A", "evt-1")
    after = await recommend(engine_settings, userId="newcomer", numResults=3)
    assert after["itemList"][0]["itemId"] == "B"
    assert after["itemList"][0]["reason"] == ["bought A"]
    assert "A" not in item_ids(after)


async def test_duplicate_event_id_is_counted_once(engine: str, engine_settings: Settings) -> None:
    await put_purchase(engine_settings, "dup-user", "A", "evt-same")
    await put_purchase(engine_settings, "dup-user", "A", "evt-same")
    await put_purchase(engine_settings, "dup-user", "S", "evt-other")
    assert await engine_stats(engine) == {
        "events_received": 2,
        "duplicate_events_ignored": 1,
        "events_followed": 0,
        "users_with_events": 1,
        "model_version": "v1",
    }


async def test_unknown_user_gets_popularity_of_the_region_in_context(
    engine: str, engine_settings: Settings
) -> None:
    south = await recommend(engine_settings, userId="stranger", context={"region": "south"})
    assert item_ids(south)[0] == "S"
    assert south["itemList"][0]["reason"] == ["popular in south"]
    anywhere = await recommend(engine_settings, userId="stranger")
    assert item_ids(anywhere)[0] == "X"


async def test_region_reported_by_events_steers_the_popularity_fill(
    engine: str, engine_settings: Settings
) -> None:
    await put_purchase(engine_settings, "traveller", "X", "evt-t", region="south")
    response = await recommend(engine_settings, userId="traveller", numResults=2)
    assert item_ids(response) == ["S", "A"]
    assert response["itemList"][0]["reason"] == ["popular in south"]


async def test_similar_items(engine: str, engine_settings: Settings) -> None:
    response = await recommend(
        engine_settings,
        campaignArn=engine_settings.similar_campaign_arn,
        itemId="A",
        numResults=2,
    )
    assert response["itemList"][0]["itemId"] == "B"
    assert response["itemList"][0]["reason"] == ["bought together with A"]
    assert len(response["itemList"]) == 2
    unknown = await recommend(
        engine_settings, campaignArn=engine_settings.similar_campaign_arn, itemId="nope"
    )
    assert unknown["itemList"] == []


async def test_personalized_ranking_puts_unknown_items_last(
    engine: str, engine_settings: Settings
) -> None:
    async with runtime_client(engine_settings) as client:
        response = await client.get_personalized_ranking(
            campaignArn=engine_settings.ranking_campaign_arn,
            userId="ab0",
            inputList=["ghost", "S", "X", "phantom"],
        )
    ranking = response["personalizedRanking"]
    assert [item["itemId"] for item in ranking] == ["X", "S", "ghost", "phantom"]
    assert ranking[2]["score"] == 0.0 and ranking[2]["reason"] == ["unknown item"]
    assert response["recommendationId"]


async def test_unknown_campaign_is_resource_not_found(
    engine: str, engine_settings: Settings
) -> None:
    arn = "arn:aws:personalize:us-east-1:000000000000:campaign/nope"
    with pytest.raises(ClientError) as raised:
        await recommend(engine_settings, campaignArn=arn, userId="ab0")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert arn in raised.value.response["Error"]["Message"]


async def test_bad_input_is_invalid_input(engine: str, engine_settings: Settings) -> None:
    with pytest.raises(ClientError) as raised:
        await recommend(engine_settings)  # user campaign without userId
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as raised:
        await recommend(engine_settings, userId="ab0", numResults=501)
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"
    async with events_client(engine_settings) as client:
        with pytest.raises(ClientError) as raised:
            await client.put_events(
                trackingId="someone-else",
                sessionId="s",
                userId="u",
                eventList=[{"eventType": "purchase", "itemId": "A", "sentAt": NOW}],
            )
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"
    assert (await engine_stats(engine))["events_received"] == 0


async def test_wrong_secret_is_rejected(engine: str, engine_settings: Settings) -> None:
    wrong = engine_settings.model_copy(update={"aws_secret_access_key": "not-the-secret"})
    with pytest.raises(ClientError) as raised:
        await recommend(wrong, userId="ab0")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as raised:
        await put_purchase(wrong, "intruder", "A", "evt-intruder")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert (await engine_stats(engine))["events_received"] == 0


async def test_unknown_key_is_rejected(engine: str, engine_settings: Settings) -> None:
    stranger = engine_settings.model_copy(update={"aws_access_key_id": "who-is-this"})
    with pytest.raises(ClientError) as raised:
        await recommend(stranger, userId="ab0")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_unsigned_request_is_rejected(engine: str, engine_settings: Settings) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{engine}/recommendations",
            json={"campaignArn": engine_settings.user_campaign_arn, "userId": "ab0"},
        )
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


async def test_newly_active_model_is_swapped_in(
    engine: str, engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{engine}/healthz")).json()
    assert health == {"status": "ok", "model_version": "v1"}
    await register_model(pool, engine_settings, "v2", bundle_lines(partner="C"))

    async def swapped() -> bool:
        return (await engine_stats(engine))["model_version"] == "v2"

    await eventually(swapped)
    response = await recommend(
        engine_settings, campaignArn=engine_settings.similar_campaign_arn, itemId="A"
    )
    assert item_ids(response)[0] == "C"
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{engine}/metrics")).text
    assert 'mgrecs_engine_model_loads_total{result="loaded"}' in metrics


async def test_before_any_model_the_engine_answers_from_events(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    async with serve(create_app(engine_settings), engine_settings.engine_port) as url:
        empty = await recommend(engine_settings, userId="early")
        assert empty["itemList"] == []
        assert (await engine_stats(url))["model_version"] is None
        await put_purchase(engine_settings, "u1", "P", "e1")
        await put_purchase(engine_settings, "u2", "P", "e2")
        await put_purchase(engine_settings, "u2", "Q", "e3")
        response = await recommend(engine_settings, userId="early")
        assert item_ids(response) == ["P", "Q"]
        mine = await recommend(engine_settings, userId="u2")
        assert mine["itemList"] == []  # only what u2 already bought is known
        similar = await recommend(
            engine_settings, campaignArn=engine_settings.similar_campaign_arn, itemId="P"
        )
        assert similar["itemList"] == []
        async with runtime_client(engine_settings) as client:
            ranking = await client.get_personalized_ranking(
                campaignArn=engine_settings.ranking_campaign_arn,
                userId="early",
                inputList=["Z", "Q", "P"],
            )
        assert item_ids(ranking, "personalizedRanking") == ["P", "Q", "Z"]


# -- SigV4 verification on its own ----------------------------------------------------------

SECRETS = {"good-key": "good-secret"}
URL = "http://engine.local:8003/recommendations"


def signed(
    body: bytes = b'{"userId": "u"}',
    key: str = "good-key",
    secret: str = "good-secret",
    service: str = "personalize",
    extra: dict[str, str] | None = None,
) -> sigv4.SignedRequest:
    """Sign a request exactly as botocore does and return it as it arrives at the server."""
    request = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={"Content-Type": "application/json", **(extra or {})},
    )
    SigV4Auth(Credentials(key, secret), service, "eu-west-1").add_auth(request)
    headers = [(name.lower(), value) for name, value in request.headers.items()]
    headers.append(("host", urlsplit(URL).netloc))
    return sigv4.SignedRequest("POST", "/recommendations", "", headers, body)


def rejected(request: sigv4.SignedRequest, now: datetime | None = None) -> AwsError:
    with pytest.raises(AwsError) as raised:
        sigv4.verify(request, SECRETS, now or datetime.now(UTC))
    return raised.value


def test_sigv4_accepts_a_correctly_signed_request() -> None:
    assert sigv4.verify(signed(), SECRETS, datetime.now(UTC)) == "good-key"
    with_hash = signed(
        extra={"X-Amz-Content-SHA256": sigv4.hashlib.sha256(b"{}").hexdigest()}, body=b"{}"
    )
    assert sigv4.verify(with_hash, SECRETS, datetime.now(UTC)) == "good-key"


def test_sigv4_rejects_a_tampered_body() -> None:
    request = signed()
    tampered = sigv4.SignedRequest(
        request.method, request.raw_path, request.query, request.headers, b'{"userId": "v"}'
    )
    error = rejected(tampered)
    assert (error.status, error.code) == (403, "InvalidSignatureException")


def test_sigv4_rejects_a_tampered_signed_header() -> None:
    request = signed()
    headers = [
        (name, "text/plain" if name == "content-type" else value) for name, value in request.headers
    ]
    error = rejected(sigv4.SignedRequest("POST", request.raw_path, "", headers, request.body))
    assert error.code == "InvalidSignatureException"


def test_sigv4_rejects_wrong_secret_and_unknown_key() -> None:
    assert rejected(signed(secret="guess")).code == "InvalidSignatureException"
    unknown = rejected(signed(key="nobody"))
    assert (unknown.status, unknown.code) == (403, "UnrecognizedClientException")


def test_sigv4_rejects_requests_older_than_fifteen_minutes() -> None:
    request = signed()
    assert sigv4.verify(request, SECRETS, datetime.now(UTC) + timedelta(minutes=14))
    error = rejected(request, datetime.now(UTC) + timedelta(minutes=16))
    assert error.code == "InvalidSignatureException" and "expired" in error.message


def test_sigv4_rejects_another_service_scope_and_a_mismatched_payload_hash() -> None:
    assert rejected(signed(service="s3")).code == "InvalidSignatureException"
    lying = signed(extra={"X-Amz-Content-SHA256": "0" * 64})
    assert rejected(lying).code == "InvalidSignatureException"


def test_sigv4_rejects_missing_or_malformed_authorization() -> None:
    request = signed()
    bare = [(n, v) for n, v in request.headers if n != "authorization"]
    missing = rejected(sigv4.SignedRequest("POST", "/recommendations", "", bare, request.body))
    assert (missing.status, missing.code) == (403, "MissingAuthenticationTokenException")
    garbled = [*bare, ("authorization", "AWS4-HMAC-SHA256 Credential=good-key/x")]
    malformed = rejected(sigv4.SignedRequest("POST", "/recommendations", "", garbled, b""))
    assert malformed.code == "IncompleteSignatureException"


def test_sigv4_garbage_is_a_403_never_a_crash() -> None:
    """A non-ASCII signature, a broken credential scope or a bad date is refused like any
    wrong signature."""
    request = signed()
    auth = request.header("authorization") or ""
    signature = auth.rsplit("Signature=", 1)[1]
    for garbage in (
        auth.replace(signature, "é" * len(signature)),
        auth.replace(signature, "\u202e" + signature[1:]),
        auth.replace("Credential=good-key/", "Credential=good-key/\x00/"),
        "AWS4-HMAC-SHA256 Credential=ü/ö/ä/personalize/aws4_request, SignedHeaders=host, "
        "Signature=ß",
    ):
        headers = [(n, garbage if n == "authorization" else v) for n, v in request.headers]
        error = rejected(sigv4.SignedRequest("POST", request.raw_path, "", headers, request.body))
        assert error.status == 403, garbage
    bad_date = [(n, "99999999T999999Z" if n == "x-amz-date" else v) for n, v in request.headers]
    error = rejected(sigv4.SignedRequest("POST", request.raw_path, "", bad_date, request.body))
    assert error.status == 403


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    authorization=st.text(max_size=300),
    amz_date=st.text(max_size=30),
    host=st.text(max_size=40),
)
def test_sigv4_answers_arbitrary_headers_with_403(
    authorization: str, amz_date: str, host: str
) -> None:
    latin = [value.encode("utf-8", "replace").decode("latin-1") for value in (authorization, host)]
    for auth in (authorization, latin[0], f"{sigv4.ALGORITHM} {authorization}"):
        headers = [("authorization", auth), ("x-amz-date", amz_date), ("host", latin[1])]
        request = sigv4.SignedRequest("POST", "/recommendations", "", headers, b"{}")
        assert rejected(request).status == 403


async def test_stats_needs_a_signed_request(engine: str) -> None:
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(f"{engine}/stats")
    assert anonymous.status_code == 403
    assert anonymous.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert (await engine_stats(engine))["model_version"] == "v1"


async def test_a_body_over_the_limit_is_refused_before_its_signature_is_checked(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """413 by Content-Length up front, and while a chunked body streams in; a body under the
    limit still meets the signature check (403 unsigned)."""
    small = engine_settings.model_copy(update={"max_request_bytes": 1000})

    async def chunks(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 100):
            yield b"x" * 100

    async with serve(create_app(small), small.engine_port) as url, httpx.AsyncClient() as http:
        declared = await http.post(f"{url}/events", content=b"x" * 1001)
        streamed = await http.post(f"{url}/events", content=chunks(5000))
        under = await http.post(f"{url}/events", content=chunks(500))
    for refused in (declared, streamed):
        assert refused.status_code == 413, refused.text
        assert refused.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert "transfer-encoding" in streamed.request.headers
    assert under.status_code == 403


def test_credentials_spec_is_parsed() -> None:
    assert sigv4.parse_credentials("a:1, b:two:parts ,") == {"a": "1", "b": "two:parts"}
    with pytest.raises(ValueError):
        sigv4.parse_credentials("no-secret")


# -- order corrections, cancellations and returns -------------------------------------------


def _order_version(lines: list[str], status: str = "placed", minutes: int = 0) -> OrderEvent:
    """Order `o-c` of customer `changer`, as of `minutes` after it was placed."""
    return OrderEvent.model_validate(
        {
            "order_id": "o-c",
            "ordered_at": NOW - timedelta(minutes=30),
            "updated_at": NOW - timedelta(minutes=30 - minutes),
            "status": status,
            "customer": {"customer_id": "changer", "region": "north"},
            "lines": [{"product_id": item, "quantity": 1, "price": "1.00"} for item in lines],
        }
    )


async def send_as_tracker(settings: Settings, order: OrderEvent) -> None:
    """The PutEvents calls the tracker's events sink makes for `order`."""
    async with events_client(settings) as client:
        for call in put_events_calls([order], settings.tracking_id):
            await client.put_events(**call)


async def test_a_cancelled_purchase_leaves_the_real_time_history(
    engine: str, engine_settings: Settings
) -> None:
    placed = _order_version(["A"])
    await send_as_tracker(engine_settings, placed)
    bought = await recommend(engine_settings, userId="changer", numResults=3)
    assert item_ids(bought)[0] == "B" and "A" not in item_ids(bought)

    await send_as_tracker(engine_settings, _order_version(["A"], "cancelled", minutes=5))
    await send_as_tracker(engine_settings, placed)  # the older version, late: ignored
    cancelled = await recommend(engine_settings, userId="changer", numResults=3)
    assert item_ids(cancelled) == ["X", "A", "B"]  # popularity; A no longer excluded

    await send_as_tracker(engine_settings, _order_version(["S", "A"], minutes=9))  # re-placed
    corrected = await recommend(engine_settings, userId="changer", numResults=3)
    assert corrected["itemList"][0]["reason"] == ["bought A"]
    assert not {"A", "S"} & set(item_ids(corrected))
    counts = await engine_stats(engine)
    assert counts["duplicate_events_ignored"] == 1  # the late line of the first version


async def test_a_restarted_engine_reads_back_only_the_lines_that_count(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """The tracker sent a purchase, then its cancellation, and an order with a line returned
    later: a replica started afterwards reads them back from `engine-events` and holds
    neither purchase; the tracker's late events for the older versions change nothing."""
    await register_model(pool, engine_settings, "v1", bundle_lines())
    placed = _order_version(["A"])
    returned = placed.model_copy(update={"order_id": "o-r", "customer": placed.customer})
    async with serve(create_app(engine_settings), engine_settings.engine_port):
        for order in (placed, returned, _order_version(["A"], "cancelled", minutes=5)):
            await send_as_tracker(engine_settings, order)
        await send_as_tracker(
            engine_settings,
            returned.model_copy(
                update={
                    "updated_at": NOW,
                    "lines": [placed.lines[0].model_copy(update={"status": "returned"})],
                }
            ),
        )
    async with serve(create_app(engine_settings), engine_settings.engine_port) as url:
        await eventually(lambda: ready(url))
        await send_as_tracker(engine_settings, placed)
        await send_as_tracker(engine_settings, returned)
        answer = await recommend(engine_settings, userId="changer", numResults=3)
        counts = await engine_stats(url)
    assert item_ids(answer) == ["X", "A", "B"]
    assert counts["events_received"] == 0 and counts["events_followed"] > 0
