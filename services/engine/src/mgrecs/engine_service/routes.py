"""HTTP routes: the Personalize wire protocol (rest-json, SigV4) and the operator endpoints."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mgrecs.common.personalize import BULK_EVENTS_PATH
from mgrecs.engine.records import Scored
from mgrecs.engine.rules import PROMOTED_REASON
from mgrecs.engine_service import answers, metrics
from mgrecs.engine_service.accept import accept
from mgrecs.engine_service.bulk import read_bulk
from mgrecs.engine_service.errors import AwsError, invalid_input, not_found
from mgrecs.engine_service.events import Recorded
from mgrecs.engine_service.filtering import NOTHING_ASKED, Asked
from mgrecs.engine_service.protocol import (
    GetPersonalizedRankingRequest,
    GetRecommendationsRequest,
    PutEventsRequest,
    lines_of,
    parse,
    predicted_item,
)
from mgrecs.engine_service.registry import ServedModel
from mgrecs.engine_service.sigv4 import SignedRequest, verify
from mgrecs.engine_service.state import EngineState
from mgrecs.store.health import ping

HEALTH_TIMEOUT_SECONDS = 2.0

router = APIRouter()


def _state(request: Request) -> EngineState:
    state: EngineState = request.app.state.engine
    return state


@contextmanager
def _observed(operation: str) -> Iterator[None]:
    """Count each operation by outcome (ok or AWS error code) and time it."""
    start = time.perf_counter()
    try:
        yield
    except AwsError as exc:
        metrics.OPERATIONS.labels(operation, exc.code).inc()
        raise
    else:
        metrics.OPERATIONS.labels(operation, "ok").inc()
    finally:
        metrics.LATENCY.labels(operation).observe(time.perf_counter() - start)


async def _authenticated_body(request: Request) -> bytes:
    """The request body, once its SigV4 signature checks out against a configured key (the
    body limit, mgrecs.common.body_limit, refused an oversized one before it was read)."""
    body = await request.body()
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    signed = SignedRequest(
        method=request.method,
        raw_path=raw_path.decode("ascii", errors="replace"),
        query=request.scope.get("query_string", b"").decode("ascii", errors="replace"),
        headers=[
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in request.scope["headers"]
        ],
        body=body,
    )
    verify(signed, _state(request).secrets, datetime.now(UTC))
    return body


def _item_list(items: list[Scored], asked: Asked = NOTHING_ASKED) -> list[dict[str, Any]]:
    """PredictedItems; a promoted one names its promotion (`promotionName`)."""
    name = asked.promotion.name if asked.promotion else None
    return [
        predicted_item(s.item_id, s.score, s.reason, name if s.reason == PROMOTED_REASON else None)
        for s in items
    ]


def _recommendation_id() -> str:
    return f"RID-{uuid4()}"


@router.post("/events")
async def put_events(request: Request) -> Response:
    """PutEvents: remember each new event; a repeated eventId is ignored."""
    state = _state(request)
    with _observed("PutEvents"):
        body = parse(PutEventsRequest, await _authenticated_body(request))
        _check_tracking_id(state, body.tracking_id)
        _count(await accept(state, lines_of(body.user_id or body.session_id, body.event_list)))
    return Response(status_code=200)


@router.post(BULK_EVENTS_PATH)
async def put_events_bulk(request: Request) -> Response:
    """The tracker's bulk of PutEvents calls (self-hosted only): one signature check and one
    parse for thousands of events. Validated whole before anything is recorded, so a
    refused bulk leaves no trace and the tracker can send its calls one by one."""
    state = _state(request)
    with _observed("PutEventsBulk"):
        bulk = read_bulk(await _authenticated_body(request))
        for number, tracking_id in enumerate(bulk.tracking_ids):
            _check_tracking_id(state, tracking_id, f"calls.{number}: ")
        _count(await accept(state, bulk.lines))
    return Response(status_code=200)


def _check_tracking_id(state: EngineState, tracking_id: str, where: str = "") -> None:
    if tracking_id != state.settings.tracking_id:
        raise invalid_input(f"{where}Tracking ID {tracking_id} is not known to this engine")


def _count(recorded: Recorded) -> None:
    metrics.EVENTS.labels(result="accepted").inc(recorded.accepted)
    metrics.EVENTS.labels(result="duplicate").inc(recorded.duplicates)


@router.post("/recommendations")
async def get_recommendations(request: Request) -> dict[str, Any]:
    """GetRecommendations: per user (user campaign) or per item (similar-items campaign)."""
    state = _state(request)
    settings = state.settings
    with _observed("GetRecommendations"):
        body = parse(GetRecommendationsRequest, await _authenticated_body(request))
        arn = body.campaign_arn or body.recommender_arn
        if not arn:
            raise invalid_input("campaignArn is required")
        if arn == settings.ranking_campaign_arn:
            raise invalid_input(f"{arn} is a ranking campaign: use GetPersonalizedRanking")
        version = pinned_version(arn, settings.user_campaign_arn)
        if version is None and arn not in (
            settings.user_campaign_arn,
            settings.similar_campaign_arn,
        ):
            raise not_found(f"Resource {arn} does not exist.")
        asked = state.filters.asked(body.filter_arn, body.filter_values, body.promotions)
        served = state.registry.current
        if version is not None:
            served = await _pinned(state, version, arn)
        if arn == settings.user_campaign_arn or version is not None:
            if not body.user_id:
                raise invalid_input("userId is required for a user-personalization campaign")
            items = answers.for_user(
                served,
                state.events,
                body.user_id,
                body.context,
                body.num_results,
                asked,
                settings.exclude_purchased,
            )
        else:
            if not body.item_id:
                raise invalid_input("itemId is required for a similar-items campaign")
            items = answers.similar(
                served, state.events, body.item_id, body.user_id, body.num_results, asked
            )
    return {"itemList": _item_list(items, asked), "recommendationId": _recommendation_id()}


def pinned_version(arn: str, user_campaign_arn: str) -> str | None:
    """The model version of a pinned user campaign (`<user campaign ARN>/<version>`, what an
    experiment's arm asks for), None for any other ARN."""
    prefix = f"{user_campaign_arn}/"
    if arn.startswith(prefix) and len(arn) > len(prefix):
        return arn[len(prefix) :]
    return None


async def _pinned(state: EngineState, version: str, arn: str) -> ServedModel:
    """The served model of a pinned campaign; an unregistered (or unloadable) version:
    ResourceNotFound."""
    assert state.pool is not None, "not started"
    served = await state.registry.pinned(state.pool, version)
    if served is None:
        raise not_found(f"Resource {arn} does not exist (no model version {version}).")
    return served


@router.post("/personalize-ranking")
async def get_personalized_ranking(request: Request) -> dict[str, Any]:
    """GetPersonalizedRanking: every input item back, best first, unknown ones last."""
    state = _state(request)
    settings = state.settings
    with _observed("GetPersonalizedRanking"):
        body = parse(GetPersonalizedRankingRequest, await _authenticated_body(request))
        if body.campaign_arn in (settings.user_campaign_arn, settings.similar_campaign_arn):
            raise invalid_input(f"{body.campaign_arn} is not a personalized-ranking campaign")
        if body.campaign_arn != settings.ranking_campaign_arn:
            raise not_found(f"Resource {body.campaign_arn} does not exist.")
        asked = state.filters.asked(body.filter_arn, body.filter_values)
        items = answers.ranking(
            state.registry.current,
            state.events,
            body.user_id,
            body.context,
            body.input_list,
            asked,
        )
    return {"personalizedRanking": _item_list(items), "recommendationId": _recommendation_id()}


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """The process answers (liveness: a database outage must not restart the engine, whose
    model and real-time history are in memory); with the served version."""
    return JSONResponse({"status": "ok", "model_version": _state(request).registry.version})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready while the model registry (PostgreSQL) answers, and once the real-time history
    has caught up with `engine-events` (a replica that just started would answer as if
    recent purchases had not happened)."""
    state = _state(request)
    version = state.registry.version
    database = "ok"
    try:
        assert state.pool is not None, "not started"
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await ping(state.pool)
    except Exception as exc:  # whatever the cause, the answer is "database down"
        database = str(exc)
    events = state.feed.ready()
    ready = database == "ok" and events == "ok"
    return JSONResponse(
        status_code=200 if ready else 503,
        content={
            "status": "ok" if ready else "unavailable",
            "model_version": version,
            "database": database,
            "events": events,
        },
    )


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """What this process received: lets operators and end-to-end tests see PutEvents land.
    Signed like every Personalize call (e.g. `curl --aws-sigv4 aws:amz:<region>:personalize
    --user key:secret`): it tells who is active."""
    await _authenticated_body(request)
    state = _state(request)
    return {
        "events_received": state.events.events_received,
        "duplicate_events_ignored": state.events.duplicates_ignored,
        "events_followed": state.events.events_followed,
        "users_with_events": state.events.users,
        "model_version": state.registry.version,
    }
