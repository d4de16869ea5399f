"""Experiments: the stable split, serving an arm's model version, and the arm report."""

import json
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from mgrecs.api.app import create_app
from mgrecs.api.experiment_report import ArmTotals, arm_report
from mgrecs.api.experiment_serving import assign, bucket, pinned_campaign_arn
from mgrecs.api.intervals import mean_interval, wilson
from mgrecs.common.experiments import Arm, Experiment
from mgrecs.common.feedback import FeedbackEvent, FeedbackKind
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine_app
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.feedback import write_feedback
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support.engine import bundle_lines, recommend, register_model
from support.experiments import EXPERIMENT
from support.helpers import asgi_client, serve

# -- the split ------------------------------------------------------------------------------


def test_a_customer_always_lands_in_the_same_arm() -> None:
    again = Experiment.model_validate(EXPERIMENT.model_dump())
    for n in range(200):
        customer = f"C{n:05d}"
        assert assign(EXPERIMENT, customer) == assign(again, customer)
        assert assign(EXPERIMENT, customer) == assign(EXPERIMENT, customer)


def test_the_split_follows_the_shares_on_many_customers() -> None:
    uneven = Experiment(
        id="uneven",
        arms=[
            Arm(name="a", model_version="v1", share=0.2),
            Arm(name="b", model_version="v2", share=0.3),
            Arm(name="c", model_version="v3", share=0.5),
        ],
    )
    customers = 20_000
    counts = Counter(assign(uneven, f"C{n:06d}").name for n in range(customers))
    for arm in uneven.arms:  # 4 standard deviations of a binomial share: about 0.014
        assert abs(counts[arm.name] / customers - arm.share) < 0.015, counts


def test_experiments_split_independently_and_deterministically() -> None:
    assert bucket("ab1", "C00001") == bucket("ab1", "C00001")
    assert 0 <= bucket("ab1", "C00001") < 1
    first = [bucket("ab1", f"C{n}") < 0.5 for n in range(2000)]
    second = [bucket("ab2", f"C{n}") < 0.5 for n in range(2000)]
    both = sum(a and b for a, b in zip(first, second, strict=True))
    assert abs(both / 2000 - 0.25) < 0.04  # independent halves overlap on a quarter


@pytest.mark.parametrize(
    "arms",
    [
        [{"name": "a", "model_version": "v1", "share": 0.5}],
        [
            {"name": "a", "model_version": "v1", "share": 0.5},
            {"name": "b", "model_version": "v2", "share": 0.4},
        ],
        [
            {"name": "a", "model_version": "v1", "share": 0.5},
            {"name": "a", "model_version": "v2", "share": 0.5},
        ],
    ],
)
def test_a_split_that_is_not_one_is_refused(arms: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        Experiment.model_validate({"id": "bad", "arms": arms})


def test_experiments_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGRECS_EXPERIMENTS", json.dumps([EXPERIMENT.model_dump()]))
    assert Settings().experiments == [EXPERIMENT]
    monkeypatch.setenv("MGRECS_EXPERIMENTS", json.dumps([EXPERIMENT.model_dump()] * 2))
    with pytest.raises(ValidationError, match="experiment ids must be distinct"):
        Settings()


# -- the report's arithmetic ------------------------------------------------------------------


def test_wilson_matches_the_published_intervals() -> None:
    ten = wilson(10, 100)
    assert ten is not None
    assert (ten.value, round(ten.low, 4), round(ten.high, 4)) == (0.1, 0.0552, 0.1744)
    none = wilson(0, 10)
    assert none is not None
    assert (round(none.low, 9), round(none.high, 4)) == (0.0, 0.2775)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_mean_interval_is_the_normal_approximation() -> None:
    # 4 impressions, two followed by purchases of 10 and 30: mean 10, sample variance 200
    interval = mean_interval(40.0, 10 * 10 + 30 * 30, 4)
    assert interval is not None
    half = 1.959964 * math.sqrt(200 / 4)
    assert interval.value == 10.0
    assert interval.low == 0.0  # 10 - 13.86, clipped: revenue is never negative
    assert round(interval.high, 4) == round(10 + half, 4)
    assert mean_interval(0.0, 0.0, 0) is None


def test_arm_report_on_constructed_counts() -> None:
    totals = ArmTotals(
        customers=40,
        impressions=100,
        clicks=10,
        add_to_carts=4,
        purchases=2,
        revenue=50.0,
        revenue_squares=20.0**2 + 30.0**2,
    )
    report = arm_report("treatment", "v2", 0.5, {"ndcg@10": 0.3}, totals)
    assert report.ctr is not None and report.conversion is not None
    assert (report.ctr.value, report.ctr.low, report.ctr.high) == (0.1, 0.055229, 0.174366)
    assert report.conversion.value == 0.02
    assert report.conversion.low == round(wilson(2, 100).low, 6)  # type: ignore[union-attr]
    revenue = report.revenue_per_impression
    assert revenue is not None and revenue.value == 0.5
    sd = math.sqrt((1300 - 100 * 0.25) / 99)
    assert revenue.high == round(0.5 + 1.959964 * sd / 10, 6)
    empty = arm_report("control", "v1", 0.5, None, ArmTotals())
    assert (empty.ctr, empty.conversion, empty.revenue_per_impression) == (None, None, None)


# -- GET /v1/experiments[/{id}] -----------------------------------------------------------


ADMIN_KEY = "admin-key"


@pytest.fixture
def ab_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"experiments": [EXPERIMENT], "api_admin_keys": ADMIN_KEY})


@pytest.fixture
async def client(ab_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard's view: every request with the admin key."""
    async with asgi_client(create_app(ab_settings)) as http:
        http.headers["X-API-Key"] = ADMIN_KEY
        yield http


async def test_a_report_needs_the_admin_key_the_list_a_read_key(ab_settings: Settings) -> None:
    ab_settings.api_read_keys = "read-key"
    async with asgi_client(create_app(ab_settings)) as http:
        anonymous = await http.get("/v1/experiments/ab1")
        as_reader = await http.get("/v1/experiments/ab1", headers={"X-API-Key": "read-key"})
        listed = await http.get("/v1/experiments", headers={"X-API-Key": "read-key"})
        unlisted = await http.get("/v1/experiments")
    assert anonymous.status_code == as_reader.status_code == 401
    assert listed.status_code == 200 and unlisted.status_code == 401


async def add_feedback(
    pool: asyncpg.Pool, arm: str, kind: FeedbackKind, count: int, revenue: str | None = None
) -> None:
    await write_feedback(
        pool,
        [
            FeedbackEvent(
                event_id=f"{arm}-{kind}-{n}",
                customer_id=f"{arm}-c{n % 3}",
                product_id="p1",
                kind=kind,
                occurred_at=datetime(2026, 11, 26, tzinfo=UTC),
                model_version=EXPERIMENT.arm(arm).model_version,  # type: ignore[union-attr]
                experiment_id="ab1",
                arm=arm,
                revenue=None if revenue is None else Decimal(revenue),
            )
            for n in range(count)
        ],
    )


async def test_experiment_report_per_arm(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    model = ModelVersion("v1", RECIPE, "x", 1, 1, 1, {"ndcg@10": 0.25})
    await register(pool, model, promote=False, reason="")
    await add_feedback(pool, "treatment", "impression", 100)
    await add_feedback(pool, "treatment", "click", 10)
    await add_feedback(pool, "treatment", "add_to_cart", 4)
    await add_feedback(pool, "treatment", "purchase", 2, "25.00")
    await add_feedback(pool, "control", "impression", 3)
    response = await client.get("/v1/experiments/ab1")
    assert response.status_code == 200
    body = response.json()
    assert body["experiment_id"] == "ab1"
    control, treatment = body["arms"]
    assert (control["arm"], control["offline_metrics"], control["impressions"]) == (
        "control",
        {"ndcg@10": 0.25},
        3,
    )
    assert control["ctr"] == {"value": 0.0, "low": 0.0, "high": round(wilson(0, 3).high, 6)}  # type: ignore[union-attr]
    assert control["offline_figures"] == {"ndcg@10": 0.25}
    assert treatment["offline_metrics"] is None  # v2 is not registered
    assert treatment["offline_figures"] == {}
    assert {k: treatment[k] for k in ("customers", "clicks", "add_to_carts", "purchases")} == {
        "customers": 3,
        "clicks": 10,
        "add_to_carts": 4,
        "purchases": 2,
    }
    assert treatment["revenue"] == 50.0
    assert treatment["ctr"] == {"value": 0.1, "low": 0.055229, "high": 0.174366}
    assert treatment["conversion"]["value"] == 0.02
    assert treatment["revenue_per_impression"]["value"] == 0.5


async def test_the_configured_experiments_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/experiments")
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "ab1",
            "arms": [
                {
                    "name": arm.name,
                    "model_version": arm.model_version,
                    "share": arm.share,
                    "serves": "model",
                }
                for arm in EXPERIMENT.arms
            ],
        }
    ]


async def test_unknown_experiment_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/experiments/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown experiment nope"}
    assert (await client.get("/v1/experiments/bad%0Aid")).status_code == 422


# -- serving an arm's model version -----------------------------------------------------------


@pytest.fixture
async def engine_with_two_versions(
    ab_settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[None]:
    """v2 (A bought with C) registered first, then v1 (A with B), the active one."""
    await register_model(pool, ab_settings, "v2", bundle_lines("C"))
    await register_model(pool, ab_settings, "v1", bundle_lines("B"))
    async with serve(create_engine_app(ab_settings), ab_settings.engine_port):
        yield


async def test_the_engine_serves_a_pinned_version(
    engine_with_two_versions: None, ab_settings: Settings, pool: asyncpg.Pool
) -> None:
    pinned = pinned_campaign_arn(ab_settings.user_campaign_arn, "v2")
    active = await recommend(ab_settings, userId="x0", numResults=2)
    older = await recommend(ab_settings, userId="x0", numResults=2, campaignArn=pinned)
    assert [item["itemId"] for item in active["itemList"]] == ["A", "B"]
    assert [item["itemId"] for item in older["itemList"]] == ["A", "C"]
    with pytest.raises(ClientError) as missing:
        await recommend(
            ab_settings,
            userId="x0",
            campaignArn=pinned_campaign_arn(ab_settings.user_campaign_arn, "v9"),
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    model = ModelVersion("v3", RECIPE, "/nowhere/v3.npz", 1, 1, 1)
    await register(pool, model, promote=False, reason="")
    with pytest.raises(ClientError) as unloadable:  # a client error: the engine is not down
        await recommend(
            ab_settings,
            userId="x0",
            campaignArn=pinned_campaign_arn(ab_settings.user_campaign_arn, "v3"),
        )
    assert unloadable.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_each_arm_is_served_its_model_version_the_same_way(
    engine_with_two_versions: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The cache was scored with v1, and both customers have a cached row: still every arm
    is served in real time from the engine, each its own version, so that the arms differ
    by their model only."""
    by_arm = {assign(EXPERIMENT, f"x{n}").name: f"x{n}" for n in range(10)}
    control, treatment = by_arm["control"], by_arm["treatment"]
    await pool.execute("UPDATE cache_generations SET model_version = 'v1' WHERE state = 'current'")
    await insert_customers(
        pool, [StoredCustomer(control, "north"), StoredCustomer(treatment, "north")]
    )
    for customer in by_arm.values():
        await put_current(pool, USERS, customer, [{"product_id": "cached", "score": 0.5}])
    served = (await client.get(f"/v1/users/{control}/recommendations?limit=2")).json()
    assert (served["source"], served["model_version"]) == ("realtime", "v1")
    assert served["experiment"] == {"experiment_id": "ab1", "arm": "control"}
    assert [item["product_id"] for item in served["items"]] == ["A", "B"]
    other = (await client.get(f"/v1/users/{treatment}/recommendations?limit=2")).json()
    assert (other["source"], other["model_version"]) == ("realtime", "v2")
    assert other["experiment"] == {"experiment_id": "ab1", "arm": "treatment"}
    assert [item["product_id"] for item in other["items"]] == ["A", "C"]
    assert served["source"] == other["source"]  # the same kind of serving for both arms
    unknown = await client.get("/v1/users/nobody/recommendations")
    assert unknown.status_code == 404
