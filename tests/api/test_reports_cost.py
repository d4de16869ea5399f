"""`GET /v1/reports/cost` over the real database: counts after a known number of calls give
the bill computed by hand at the default price table; calls through the api are counted;
the budget gauge; an admin key needed; any period either answered or refused with a 422."""

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, example, given, strategies
from hypothesis import settings as hypothesis_settings
from prometheus_client import REGISTRY

from mgrecs.api.app import create_app
from mgrecs.api.cost_gauges import refresh_cost_gauges
from mgrecs.common import usage
from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER, Meter
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.usage import add_usage, usage_between
from support.helpers import asgi_client, serve

ADMIN_KEY = "admin-key"
DAY = date(2026, 12, 1)
HOUR10 = datetime(2026, 12, 1, 10, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 8, tzinfo=UTC)
EXPECTED_DAY_USD = (
    (10_000 * 260 + 1e9) / 1e9 * 0.05  # data ingestion: events at 260 bytes, 1 GB imported
    + 2.5 * 0.24  # training hours
    + (26 + 24) * 0.20  # TPS-hours: user campaign 23 x 1 + 3 at 10:00, ranking 24 x 1
    + 100 * 0.067  # 100,000 batch recommendations
    + 2 * 0.023  # 2 GB written to S3
)


def fake_ranking() -> FastAPI:
    """A stand-in for the Personalize runtime (outside the system under test): answers
    GetPersonalizedRanking in the botocore rest-json shape, the input list as it came."""
    app = FastAPI()

    @app.post("/personalize-ranking")
    async def ranking(request: Request) -> JSONResponse:
        body = await request.json()
        items = [{"itemId": pid, "score": 0.5} for pid in body["inputList"]]
        return JSONResponse({"personalizedRanking": items, "recommendationId": "RID"})

    return app


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_admin_keys": ADMIN_KEY})


@pytest.fixture
async def client(admin_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(admin_settings, clock=lambda: NOW)) as http:
        http.headers["X-API-Key"] = ADMIN_KEY
        yield http


async def known_day(pool: asyncpg.Pool) -> None:
    """AWS mode's 2026-12-01: 900 GetRecommendations in one 5-minute window (3 a second),
    60 GetPersonalizedRanking (one each 5 s), 1,000 PutEvents calls of 10,000 events, 2.5
    training hours, 2 batch jobs of 100,000 inputs, 1 GB of datasets, 2 GB stored."""
    meter = Meter()
    t0 = HOUR10.timestamp()
    for second in range(300):
        for _ in range(3):
            meter.call("api", usage.GET_RECOMMENDATIONS, "arn:user", now=t0 + second)
        if second % 5 == 0:
            meter.call("api", usage.GET_PERSONALIZED_RANKING, "arn:rank", now=t0 + second)
    meter.add("tracker", usage.PUT_EVENTS_CALLS, 1000)
    meter.add("tracker", usage.EVENTS, 10_000)
    meter.add("batch", usage.TRAINING_HOURS, 2.5)
    meter.add("batch", usage.BATCH_JOBS, 2)
    meter.add("batch", usage.BATCH_INPUTS, 100_000)
    meter.add("batch", usage.DATASET_BYTES, 1e9)
    # stored in two flushes of two hours: the rows add up
    meter.add("batch", usage.STORED_BYTES, 1.5e9)
    await add_usage(pool, HOUR10, "aws", "batch", meter.take("batch"))
    meter.add("batch", usage.STORED_BYTES, 0.5e9)
    await add_usage(pool, HOUR10 + timedelta(hours=5), "aws", "batch", meter.take("batch"))
    for service in ("api", "tracker"):
        await add_usage(pool, HOUR10, "aws", service, meter.take(service))


async def test_counts_after_known_calls_give_the_bill_of_the_default_price_table(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await known_day(pool)

    answer = await client.get(
        "/v1/reports/cost", params={"start": "2026-11-30", "end": "2026-12-02"}
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prices"]["taken"] == "2026-12-07"
    [day] = body["days"]
    assert (day["period"], day["mode"]) == ("2026-12-01", "aws")
    assert day["counts"] == {
        "batch_inference_inputs": 100_000,
        "batch_inference_jobs": 2,
        "dataset_bytes": 1e9,
        "events": 10_000,
        "get_personalized_ranking": 60,
        "get_recommendations": 900,
        "peak_tps": 3,
        "peak_tps_5min": 3,
        "put_events_calls": 1000,
        "stored_bytes": 2e9,
        "training_hours": 2.5,
    }
    assert day["peak_tps"] == {"arn:user": 3, "arn:rank": 1}
    assert day["aws_usd"] == pytest.approx(EXPECTED_DAY_USD)
    assert {line["item"]: line["usd"] for line in day["lines"]} == pytest.approx(
        {
            "data ingestion": 0.05013,
            "training": 0.6,
            "real-time recommendations": 10.0,
            "batch recommendations": 6.7,
            "S3 storage": 0.046,
        }
    )
    assert (day["machine_hours"], day["over_budget"]) == (0, False)
    [month] = body["months"]
    assert (month["period"], month["aws_usd"]) == ("2026-12", pytest.approx(EXPECTED_DAY_USD))


async def test_self_hosted_mode_shows_what_aws_would_cost_beside_its_machine_hours(
    admin_settings: Settings, pool: asyncpg.Pool
) -> None:
    meter = Meter()
    meter.add("tracker", usage.EVENTS, 1e6)
    meter.add("engine", usage.CPU_SECONDS, 7200)
    await add_usage(pool, HOUR10, "self-hosted", "tracker", meter.take("tracker"))
    await add_usage(pool, HOUR10, "self-hosted", "engine", meter.take("engine"))
    halfway = datetime(2026, 12, 1, 11, 30, tzinfo=UTC)  # the day's 12th hour under way
    async with asgi_client(create_app(admin_settings, clock=lambda: halfway)) as http:
        answer = await http.get("/v1/reports/cost", headers={"X-API-Key": ADMIN_KEY})

    [day] = answer.json()["days"]
    assert day["mode"] == "self-hosted"
    assert day["aws_usd"] == pytest.approx(1e6 * 260 / 1e9 * 0.05)
    assert day["machine_hours"] == 12
    assert day["machine_usd"] == pytest.approx(12 * 0.096)
    assert day["cpu_seconds"] == {"engine": 7200}


async def test_calls_through_the_api_are_counted_per_campaign(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await insert_products(pool, [StoredProduct(p, p) for p in ("p1", "p2")])
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    METER.take("api")  # what other tests left in this process's meter
    async with (
        serve(fake_ranking(), settings.engine_port),
        asgi_client(create_app(settings)) as http,
    ):
        for _ in range(7):
            ranked = await http.post("/v1/users/c1/rank", json={"product_ids": ["p1", "p2"]})
            assert ranked.json()["source"] == "realtime"
    # the app's end flushed its meter
    rows = await usage_between(
        pool, NOW - timedelta(days=400), datetime.now(UTC) + timedelta(hours=1)
    )
    counted: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for r in rows:  # summed over the hours (the test may straddle one's end)
        counted[(r.mode, r.service, r.metric, r.campaign)] += r.value
    ranking = ("self-hosted", "api", usage.GET_PERSONALIZED_RANKING, settings.ranking_campaign_arn)
    assert counted[ranking] == 7
    assert 1 <= counted[("self-hosted", "api", usage.PEAK_TPS, settings.ranking_campaign_arn)] <= 7
    assert counted[("self-hosted", "api", usage.CPU_SECONDS, "")] > 0


async def test_a_day_over_budget_sets_the_gauge_and_logs_once(
    admin_settings: Settings, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await known_day(pool)
    budget = admin_settings.model_copy(update={"daily_budget": 10.0})
    evening = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)

    await refresh_cost_gauges(pool, budget, evening)
    await refresh_cost_gauges(pool, budget, evening)

    today = REGISTRY.get_sample_value("mgrecs_cost_estimate_today_usd", {"mode": "aws"})
    assert today == pytest.approx(EXPECTED_DAY_USD)
    assert REGISTRY.get_sample_value("mgrecs_cost_daily_budget_usd") == 10.0
    logged = capsys.readouterr()
    assert (logged.out + logged.err).count("cost_over_budget") == 1


async def test_the_report_needs_the_admin_key(admin_settings: Settings) -> None:
    admin_settings.api_read_keys = "read-key"
    async with asgi_client(create_app(admin_settings)) as http:
        as_reader = await http.get("/v1/reports/cost", headers={"X-API-Key": "read-key"})
    assert as_reader.status_code == 401


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"start": "2026-12-02", "end": "2026-12-01"}, "after end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "366"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
    ],
)
async def test_bad_periods_are_refused_with_a_reason(
    client: httpx.AsyncClient, params: dict[str, str], says: str
) -> None:
    answer = await client.get("/v1/reports/cost", params=params)
    assert answer.status_code == 422
    assert says in str(answer.json()["detail"])


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=strategies.none() | strategies.dates() | strategies.text(max_size=12),
    days=strategies.integers(min_value=-5, max_value=400),
    only_end=strategies.booleans(),
)
# The first and last days there are: the default start before `end`, the day after `end`
# (both were a 500).
@example(start=date.min, days=0, only_end=True)
@example(start=date.max, days=0, only_end=True)
@example(start=date.max - timedelta(days=1), days=1, only_end=False)
async def test_any_period_is_answered_or_refused_never_failed(
    admin_settings: Settings, start: date | str | None, days: int, only_end: bool
) -> None:
    params: dict[str, str] = {}
    if isinstance(start, date) and only_end:
        params["end"] = start.isoformat()
    elif isinstance(start, date):
        params["start"] = start.isoformat()
        try:
            params["end"] = (start + timedelta(days=days)).isoformat()
        except OverflowError:
            params["end"] = start.isoformat()
    elif start is not None:
        params["start"] = start
    async with asgi_client(create_app(admin_settings, clock=lambda: NOW)) as http:
        answer = await http.get("/v1/reports/cost", params=params, headers={"X-API-Key": ADMIN_KEY})
    if isinstance(start, date) and only_end:
        expected = {200}
    elif isinstance(start, date):
        expected = {200 if 0 <= days < 366 else 422}
    elif start is None:
        expected = {200}
    else:  # free text: a 422, unless it reads as a date (whose other spellings may differ)
        try:
            date.fromisoformat(start)
        except ValueError:
            expected = {422}
        else:
            expected = {200, 422}
    assert answer.status_code in expected, (params, answer.text)
    if answer.status_code == 422:
        assert answer.json()["detail"], answer.text
