"""Fair experiments on real PostgreSQL: the report finds a planted difference between arms
and none where none is planted, sizes the sample and warns while it is short, checks that
the arms were served alike; holdout arms are served popularity or nothing."""

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mgrecs.api.app import create_app
from mgrecs.api.experiment_serving import assign
from mgrecs.api.experiment_stats import sample_size_proportion
from mgrecs.common.experiments import Arm, Experiment
from mgrecs.common.settings import Settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.experiments import EXPERIMENT, plant
from support.helpers import asgi_client

ADMIN_KEY = "admin-key"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    ab = settings.model_copy(update={"experiments": [EXPERIMENT], "api_admin_keys": ADMIN_KEY})
    async with asgi_client(create_app(ab)) as http:
        http.headers["X-API-Key"] = ADMIN_KEY
        yield http


async def report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/experiments/{EXPERIMENT.id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


MEASURES = ("ctr", "conversion", "revenue_per_customer")


async def test_a_planted_difference_is_significant(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await plant(pool, "control", 2000, ctr=0.05, conversion=0.02, seed=1)
    await plant(pool, "treatment", 2000, ctr=0.08, conversion=0.035, seed=2)
    body = await report(client)
    assert body["baseline"] == "control"
    (comparison,) = body["comparisons"]
    assert (comparison["arm"], comparison["baseline"]) == ("treatment", "control")
    for measure in MEASURES:
        found = comparison[measure]
        assert found["p_value"] < 0.05 and found["significant"], (measure, found)
        assert 0 < found["low"] < found["value"] < found["high"], (measure, found)
    control, treatment = body["arms"]
    ctr_lift = treatment["ctr"]["value"] - control["ctr"]["value"]
    assert comparison["ctr"]["value"] == pytest.approx(ctr_lift, abs=1e-6)
    spent = treatment["revenue_per_customer"]["value"] - control["revenue_per_customer"]["value"]
    assert comparison["revenue_per_customer"]["value"] == pytest.approx(spent, abs=1e-5)
    assert body["served_alike"] and body["serving_warning"] is None
    assert control["served_from"] == treatment["served_from"] == {"realtime": 8000}


async def test_no_planted_difference_gives_intervals_around_zero(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """One seeded draw (a false alarm happens in 5 % of draws by design: the tests' rate of
    them is checked in test_experiment_stats.py)."""
    await plant(pool, "control", 2000, ctr=0.05, conversion=0.02, seed=30)
    await plant(pool, "treatment", 2000, ctr=0.05, conversion=0.02, seed=40)
    (comparison,) = (await report(client))["comparisons"]
    for measure in MEASURES:
        found = comparison[measure]
        assert found["low"] < 0 < found["high"], (measure, found)
        assert found["p_value"] > 0.05 and not found["significant"], (measure, found)


async def test_the_sample_size_warning_lasts_while_an_arm_is_short(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """To detect a 50 % lift, CTR 5 % needs about 1,470 impressions per arm: 200 customers
    (800 impressions) are too few, 2,000 (8,000) enough."""
    await plant(pool, "control", 200, ctr=0.05, conversion=0.02, seed=5)
    await plant(pool, "treatment", 200, ctr=0.05, conversion=0.02, seed=6)
    small = await report(client, mde=0.5)
    assert small["mde"] == 0.5 and (small["alpha"], small["power"]) == (0.05, 0.8)
    assert small["warning"] is not None and "sample too small" in small["warning"]
    control = small["arms"][0]
    ctr = control["sample_size"]["ctr"]
    base_rate = control["clicks"] / control["impressions"]
    assert ctr["required"] == sample_size_proportion(base_rate, 0.5)
    assert ctr["observed"] == 800 and ctr["still_needed"] == ctr["required"] - 800 > 0
    assert f"control ctr: {ctr['still_needed']} more impressions" in small["warning"]

    await plant(pool, "control", 2000, ctr=0.05, conversion=0.02, seed=7, source="popular")
    await plant(pool, "treatment", 2000, ctr=0.05, conversion=0.02, seed=8, source="popular")
    large = await report(client, mde=0.5)
    assert large["warning"] is None
    for arm in large["arms"]:
        for measure in MEASURES:
            size = arm["sample_size"][measure]
            assert size["still_needed"] == 0 and size["observed"] >= size["required"] > 0
    stricter = await report(client, mde=0.05)  # a 5 % lift: far more needed
    assert stricter["warning"] is not None


async def test_arms_served_differently_are_flagged(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await plant(pool, "control", 50, ctr=0.05, conversion=0.02, seed=9, source="cache")
    await plant(pool, "treatment", 50, ctr=0.05, conversion=0.02, seed=10)
    body = await report(client)
    assert not body["served_alike"]
    assert body["serving_warning"] == (
        "arms served differently (control mostly cache, treatment mostly realtime): "
        "the comparison mixes serving and model"
    )
    assert body["arms"][0]["served_from"] == {"cache": 200}


async def test_without_feedback_nothing_is_compared_and_the_warning_says_why(
    client: httpx.AsyncClient,
) -> None:
    body = await report(client)
    (comparison,) = body["comparisons"]
    assert all(comparison[m] is None for m in MEASURES)
    assert body["warning"] is not None and "no data to size it" in body["warning"]
    assert body["served_alike"]


# -- any query parameters -------------------------------------------------------------------


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(["mde", "alpha", "power"]),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=0.01, max_value=0.99),
            st.text(max_size=8),
        ),
    )
)
async def test_any_report_parameters_get_a_report_or_a_422(
    client: httpx.AsyncClient, pool: asyncpg.Pool, params: dict[str, object]
) -> None:
    if await pool.fetchval("SELECT count(*) FROM feedback_events") == 0:
        await plant(pool, "control", 30, ctr=0.2, conversion=0.1, seed=12)
        await plant(pool, "treatment", 30, ctr=0.3, conversion=0.1, seed=13)
    text = {k: str(v).encode("utf-8", "replace").decode() for k, v in params.items()}
    response = await client.get(f"/v1/experiments/{EXPERIMENT.id}", params=text)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"]
        return
    body = response.json()
    assert 0 < body["mde"] <= 10 and 0 < body["alpha"] <= 0.5 and 0.5 <= body["power"] < 1
    for found in (body["comparisons"][0][m] for m in MEASURES):
        assert found is not None and found["low"] <= found["value"] <= found["high"]
        assert found["significant"] == (found["p_value"] < body["alpha"])
        assert 0 <= found["p_value"] <= 1
    for arm in body["arms"]:
        for size in arm["sample_size"].values():
            if size is not None and size["required"] is not None:
                assert size["still_needed"] == max(size["required"] - size["observed"], 0)
    assert (body["warning"] is None) == all(
        size is None or size["still_needed"] == 0
        for arm in body["arms"]
        for size in arm["sample_size"].values()
    )


# -- holdout arms -----------------------------------------------------------------------------


ARM_FIELDS = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "c", "bad name"]), "share": st.just(0.5)},
    optional={
        "model_version": st.one_of(st.none(), st.sampled_from(["v1", "v2", ""])),
        "serves": st.sampled_from(["model", "popularity", "nothing", "everything"]),
        "campaign_arn": st.one_of(st.none(), st.just("arn:aws:personalize:x")),
    },
)


@given(arms=st.lists(ARM_FIELDS, min_size=2, max_size=2))
def test_any_experiment_config_is_valid_or_refused_with_a_reason(
    arms: list[dict[str, object]],
) -> None:
    try:
        experiment = Experiment.model_validate({"id": "x", "arms": arms})
    except ValidationError as refused:
        assert refused.errors()
        return
    for arm in experiment.arms:
        if arm.serves == "model":
            assert arm.model_version and not arm.holdout
        else:
            assert arm.holdout and arm.model_version is None and arm.campaign_arn is None


def test_a_holdout_arm_needs_no_model_and_refuses_one() -> None:
    holdout = Arm(name="held", share=0.1, serves="popularity")
    assert holdout.holdout and holdout.model_version is None
    with pytest.raises(ValidationError, match="a model arm needs a model_version"):
        Arm(name="a", share=0.5)
    with pytest.raises(ValidationError, match="a holdout arm has no model_version"):
        Arm(name="held", share=0.1, serves="nothing", model_version="v1")


WITH_HOLDOUTS = Experiment(
    id="held",
    arms=[
        Arm(name="model", model_version="v1", share=0.4),
        Arm(name="popular", share=0.3, serves="popularity"),
        Arm(name="nothing", share=0.3, serves="nothing"),
    ],
)


@pytest.fixture
async def holdout_client(
    settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    """North's customers n0..n29; p1 bought by 3 of them, p2 by 2."""
    await insert_products(pool, [StoredProduct(p, f"product {p}", "tea") for p in ("p1", "p2")])
    await insert_customers(pool, [StoredCustomer(f"n{i}", "north") for i in range(30)])
    now = datetime.now(UTC) - timedelta(days=3)
    orders = [StoredOrder(f"o1-{n}", f"n{n}", now, [StoredLine(0, "p1")]) for n in range(3)]
    orders += [StoredOrder(f"o2-{n}", f"n{n}", now, [StoredLine(0, "p2")]) for n in range(2)]
    await insert_orders(pool, orders)
    held = settings.model_copy(update={"experiments": [WITH_HOLDOUTS], "env": "development"})
    async with asgi_client(create_app(held)) as http:
        yield http


async def test_holdout_arms_are_served_popularity_or_nothing(
    holdout_client: httpx.AsyncClient,
) -> None:
    by_arm = {assign(WITH_HOLDOUTS, f"n{n}").name: f"n{n}" for n in range(30)}
    popular = (await holdout_client.get(f"/v1/users/{by_arm['popular']}/recommendations")).json()
    assert (popular["source"], popular["model_version"]) == ("popular", None)
    assert popular["experiment"] == {"experiment_id": "held", "arm": "popular"}
    assert [item["product_id"] for item in popular["items"]] == ["p1", "p2"]
    nothing = (await holdout_client.get(f"/v1/users/{by_arm['nothing']}/recommendations")).json()
    assert (nothing["source"], nothing["items"]) == ("none", [])
    assert nothing["experiment"] == {"experiment_id": "held", "arm": "nothing"}
    unknown = await holdout_client.get("/v1/users/nobody-at-all/recommendations")
    assert unknown.status_code == 404
    listed = (await holdout_client.get("/v1/experiments")).json()
    assert [(a["name"], a["model_version"], a["serves"]) for a in listed[0]["arms"]] == [
        ("model", "v1", "model"),
        ("popular", None, "popularity"),
        ("nothing", None, "nothing"),
    ]


def test_assignment_to_a_holdout_is_stable_and_follows_the_share() -> None:
    counts = {arm.name: 0 for arm in WITH_HOLDOUTS.arms}
    for n in range(6000):
        arm = assign(WITH_HOLDOUTS, f"c{n}")
        assert assign(WITH_HOLDOUTS, f"c{n}") == arm
        counts[arm.name] += 1
    assert all(
        math.isclose(counts[arm.name] / 6000, arm.share, abs_tol=0.03) for arm in WITH_HOLDOUTS.arms
    ), counts


async def test_an_arm_served_nothing_is_left_out_of_the_feedback_report(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """No list, no feedback: its comparison and sample sizes are null and it raises no
    warning; the popularity holdout is compared as any arm."""
    await plant(pool, "model", 2000, ctr=0.05, conversion=0.02, seed=14, experiment=WITH_HOLDOUTS)
    await plant(
        pool,
        "popular",
        2000,
        ctr=0.03,
        conversion=0.01,
        seed=15,
        experiment=WITH_HOLDOUTS,
        source="popular",
    )
    held = settings.model_copy(update={"experiments": [WITH_HOLDOUTS], "api_admin_keys": "k"})
    async with asgi_client(create_app(held)) as http:
        response = await http.get(
            "/v1/experiments/held", headers={"X-API-Key": "k"}, params={"mde": 1}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    popular, nothing = body["comparisons"]
    assert popular["arm"] == "popular" and popular["ctr"]["significant"]
    assert popular["ctr"]["value"] < 0  # the model beats popularity on CTR
    assert nothing["arm"] == "nothing" and all(nothing[m] is None for m in MEASURES)
    assert body["arms"][2]["sample_size"] == {m: None for m in MEASURES}
    assert body["warning"] is None  # 2,000 customers each suffice to see a doubling
    assert body["served_alike"]  # the holdout's popular source is by design
