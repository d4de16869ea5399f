"""Exact per-region aggregates of a cache generation, on the real database: after a sharded
infer they equal a direct computation from the cached user lists and the active customers;
a new generation brings its own, and its shards' partial counts do not outlive the flip.
The region page's exact mode serves them, and agrees with a sample of the whole region."""

from typing import Any

import asyncpg
import pytest

from mgrecs.api.app import create_app
from mgrecs.api.intervals import wilson
from mgrecs.batch.aggregates import tally
from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.common.settings import Settings
from mgrecs.engine.records import Scored
from support.helpers import asgi_client
from support.shop import insert_shop

# The region page's reading of the cache, over every active customer instead of a sample.
DIRECT = """
WITH active AS (
    SELECT c.customer_id, c.region FROM customers c
    WHERE c.region IS NOT NULL AND EXISTS (
        SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $1)
), got AS (
    SELECT a.region, r.user_id, e ->> 'product_id' AS product_id,
           (e ->> 'score')::float8 AS score
    FROM offline_user_recommendations r
    JOIN active a ON a.customer_id = r.user_id
    CROSS JOIN LATERAL jsonb_array_elements(r.recommendations) e
)
SELECT g.region, g.product_id, count(DISTINCT g.user_id) AS customers,
       (SELECT count(*) FROM active a WHERE a.region = g.region) AS active_customers,
       avg(g.score) AS mean_score
FROM got g GROUP BY g.region, g.product_id
"""

STORED = (
    "SELECT region, product_id, customers, active_customers, share, mean_score"
    " FROM region_product_aggregates"
)


def by_key(rows: list[asyncpg.Record]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["region"], row["product_id"]): dict(row) for row in rows}


@pytest.fixture
async def trained(pool: asyncpg.Pool, settings: Settings) -> Settings:
    """`support.shop`'s purchases (north: c1-c3, south: c4, c5 active and c6 not) and a model."""
    await insert_shop(pool)
    settings.infer_shards = 3
    await retrain(pool, settings)
    return settings


async def test_aggregates_equal_a_direct_computation_from_the_cached_lists(
    trained: Settings, pool: asyncpg.Pool
) -> None:
    summary = await infer(pool, trained)
    active_since = await pool.fetchval(
        "SELECT active_since FROM cache_generations WHERE generation = $1", summary.generation
    )
    direct = by_key(await pool.fetch(DIRECT, active_since))
    stored = by_key(await pool.fetch(STORED))

    assert stored.keys() == direct.keys()
    assert {region for region, _ in stored} == {"north", "south"}
    for key, row in stored.items():
        expected = direct[key]
        assert row["customers"] == expected["customers"]
        assert row["active_customers"] == expected["active_customers"]
        assert row["share"] == pytest.approx(expected["customers"] / expected["active_customers"])
        assert row["mean_score"] == pytest.approx(expected["mean_score"], abs=1e-9)
    # The inactive c6 counts nowhere: north has c1-c3, south c4 and c5.
    assert {region: row["active_customers"] for (region, _), row in stored.items()} == {
        "north": 3,
        "south": 2,
    }


async def test_a_new_generation_brings_its_own_aggregates(
    trained: Settings, pool: asyncpg.Pool
) -> None:
    first = await infer(pool, trained)
    await pool.execute(
        "UPDATE customers SET region = 'east' WHERE customer_id = 'c5'"
    )  # moves before the next fill
    second = await infer(pool, trained)

    stored = by_key(await pool.fetch(STORED))
    assert {region for region, _ in stored} == {"north", "south", "east"}
    assert all(
        row["active_customers"] == 1 for (region, _), row in stored.items() if region == "east"
    )
    counts = await pool.fetch(
        "SELECT generation, count(*) AS n FROM region_product_aggregates_rows GROUP BY generation"
    )
    assert {row["generation"] for row in counts} == {first.generation, second.generation}
    assert await pool.fetchval("SELECT count(*) FROM region_aggregate_shards") == 0


def test_tally_counts_each_customer_in_their_region() -> None:
    lists = {
        "a": [Scored("p1", 0.5, "x"), Scored("p2", 0.25, "x")],
        "b": [Scored("p1", 0.1234567, "x")],
        "c": [Scored("p1", 0.9, "x")],
    }
    result = tally({"a": "north", "b": "north", "c": None, "d": "north"}, lists)
    assert result.active == {"north": 3}  # d has no list but is active; c has no region
    assert result.customers == {("north", "p1"): 2, ("north", "p2"): 1}
    assert result.score_sums[("north", "p1")] == pytest.approx(0.5 + 0.123457)


async def test_the_region_page_exact_mode_serves_them(
    trained: Settings, pool: asyncpg.Pool
) -> None:
    summary = await infer(pool, trained)
    active_since = await pool.fetchval(
        "SELECT active_since FROM cache_generations WHERE generation = $1", summary.generation
    )
    direct = {
        product: row
        for (region, product), row in by_key(await pool.fetch(DIRECT, active_since)).items()
        if region == "north"
    }
    url = "/v1/regions/north/recommendations"
    async with asgi_client(create_app(trained)) as http:
        exact = (await http.get(url, params={"mode": "exact", "limit": 100})).json()
        whole_sample = (await http.get(url, params={"sample_size": 100, "limit": 100})).json()

    assert (exact["mode"], exact["source"]) == ("exact", "aggregates")
    assert exact["generation"] == summary.generation and exact["computed_at"] is not None
    assert exact["window_start"] is None
    assert (exact["population"], exact["sample_size"]) == (3, 3)  # c1-c3
    assert {item["product_id"]: item["users"] for item in exact["items"]} == {
        product: row["customers"] for product, row in direct.items()
    }
    for item in exact["items"]:
        interval = wilson(item["users"], 3)
        assert interval is not None
        low, high = interval.low, interval.high
        assert item["match_rate"] == round(item["users"] / 3 * 100, 1)
        assert (item["match_rate_low"], item["match_rate_high"]) == (
            round(low * 100, 1),
            round(high * 100, 1),
        )
        assert item["mean_score"] == round(direct[item["product_id"]]["mean_score"], 4)
    # A sample holding every active customer counts what the batch counted.
    assert (whole_sample["mode"], whole_sample["sample_size"]) == ("sample", 3)
    assert whole_sample["items"] == exact["items"]


async def test_exact_mode_filters_categories_and_serves_an_expired_generation_marked_stale(
    trained: Settings, pool: asyncpg.Pool
) -> None:
    await infer(pool, trained)
    await pool.execute("UPDATE products SET category = 'odd' WHERE product_id IN ('p1', 'p3')")
    url = "/v1/regions/north/recommendations"
    params = {"mode": "exact", "limit": 100}
    # No answer cache: the generation expires between two requests of one process here.
    uncached = trained.model_copy(update={"api_answer_cache_seconds": 0})
    async with asgi_client(create_app(uncached)) as http:
        every = (await http.get(url, params=params)).json()
        odd = (await http.get(url, params={**params, "category": "odd"})).json()
        await pool.execute("UPDATE cache_generations SET completed_at = now() - interval '7 h'")
        expired = (await http.get(url, params=params)).json()

    assert [i for i in every["items"] if i["product_id"] in {"p1", "p3"}] == odd["items"]
    assert odd["items"] and all(i["category"] == "odd" for i in odd["items"])
    assert expired["items"] == every["items"] and expired["generation"] == every["generation"]
    assert (every["stale"], expired["stale"]) == (False, True)
    assert expired["cache_age_seconds"] >= 7 * 3600
