"""`GET /v1/reports/impact` over the real database: attributed revenue per group, an admin
key needed, and any query either answered or refused with a 422 saying why."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, example, given, strategies
from hypothesis import settings as hypothesis_settings

from mgrecs.api.app import create_app
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store.impact import DIMENSIONS
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.served import write_served
from support.helpers import asgi_client

ADMIN_KEY = "admin-key"
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_admin_keys": ADMIN_KEY})


@pytest.fixture
async def client(admin_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(admin_settings)) as http:
        http.headers["X-API-Key"] = ADMIN_KEY
        yield http


async def seed(pool: asyncpg.Pool) -> None:
    await insert_products(pool, [StoredProduct("P1", category="dairy"), StoredProduct("P2")])
    await write_served(
        pool,
        [
            ServedList.model_validate(
                {
                    "served_id": "s1",
                    "served_at": T0 - timedelta(days=1),
                    "endpoint": "user",
                    "customer_id": "C1",
                    "product_ids": ["P1"],
                    "source": "cache",
                    "model_version": "v7",
                }
            )
        ],
    )
    await insert_orders(
        pool,
        [
            StoredOrder("o1", "C1", T0, [StoredLine(0, "P1", 3, 2.5), StoredLine(1, "P2", 1, 4.0)]),
            StoredOrder("o2", "C1", T0 + timedelta(days=1), [StoredLine(0, "P1", 1, 2.5)]),
        ],
    )


async def test_attributed_revenue_per_model_version_and_day(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await seed(pool)
    start, end = (T0 - timedelta(days=2)).isoformat(), (T0 + timedelta(days=3)).isoformat()

    answer = await client.get(
        "/v1/reports/impact",
        params={"start": start, "end": end, "group_by": "model_version,day"},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    attributed = {
        (g["key"]["model_version"], g["key"]["day"]): g["attributed"]["revenue"]
        for g in body["groups"]
        if g["attributed"]["revenue"]
    }
    assert attributed == {("v7", "2026-11-20"): 7.5, ("v7", "2026-11-21"): 2.5}
    assert body["total"]["attributed"]["revenue"] == 10.0
    assert body["total"]["baseline"]["revenue"] == 4.0
    assert body["uplift"]["difference"]["n"] == 1


async def test_the_report_needs_the_admin_key(admin_settings: Settings) -> None:
    admin_settings.api_read_keys = "read-key"
    async with asgi_client(create_app(admin_settings)) as http:
        as_reader = await http.get("/v1/reports/impact", headers={"X-API-Key": "read-key"})
    assert as_reader.status_code == 401


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"group_by": "price"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"group_by": "day,arm,region"}, "group_by"),
        ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-19T00:00:00Z"}, "before end"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "366"),
        ({"start": "yesterday"}, "start"),
    ],
)
async def test_bad_parameters_are_refused_with_a_reason(
    client: httpx.AsyncClient, params: dict[str, str], says: str
) -> None:
    answer = await client.get("/v1/reports/impact", params=params)
    assert answer.status_code == 422
    assert says in answer.json()["detail"]


def in_utc(moment: datetime) -> datetime | None:
    """What the report reads `moment` as (UTC without a zone); None when UTC has no such
    time."""
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        return None


OFFSETS = strategies.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
"""Zones ISO 8601 can write: whole minutes."""


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group_by=strategies.lists(
        strategies.sampled_from(DIMENSIONS) | strategies.text(max_size=12), max_size=3
    ).map(",".join),
    start=strategies.none()
    | strategies.datetimes(timezones=strategies.none() | strategies.just(UTC) | OFFSETS),
    days=strategies.floats(min_value=-5, max_value=400),
    only_end=strategies.booleans(),
)
# Times at the ends of what a datetime holds: an offset past them in UTC, and the default
# start a week before an `end` in year 1 (all were a 500).
@example(
    group_by="day",
    start=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    days=1,
    only_end=False,
)
@example(
    group_by="day",
    start=datetime(9999, 12, 31, 20, tzinfo=timezone(-timedelta(hours=5))),
    days=0.1,
    only_end=False,
)
@example(group_by="day", start=datetime(1, 1, 2, tzinfo=UTC), days=0, only_end=True)
async def test_any_query_is_answered_or_refused_never_failed(
    admin_settings: Settings, group_by: str, start: datetime | None, days: float, only_end: bool
) -> None:
    params = {"group_by": group_by}
    end = None
    if start is not None:
        try:
            end = start + timedelta(days=days)
        except OverflowError:
            end = start
        if only_end:
            start = None
        else:
            params["start"] = start.isoformat()
        params["end"] = end.isoformat()
    async with asgi_client(create_app(admin_settings)) as http:
        answer = await http.get(
            "/v1/reports/impact", params=params, headers={"X-API-Key": ADMIN_KEY}
        )
    names = [part.strip() for part in group_by.split(",")]
    valid_group = (
        1 <= len(names) <= 2
        and len(set(names)) == len(names)
        and all(name in DIMENSIONS for name in names)
    )
    since, until = (in_utc(m) if m else None for m in (start, end))
    if start is not None and end is not None:
        valid_period = since is not None and until is not None and 0 < days <= 366
    elif end is not None:
        valid_period = until is not None and until > datetime.min.replace(tzinfo=UTC)
    else:
        valid_period = True
    assert answer.status_code == (200 if valid_group and valid_period else 422), (
        params,
        answer.text,
    )
    if answer.status_code == 200:
        assert answer.json()["group_by"] == names
    else:
        assert answer.json()["detail"], answer.text
