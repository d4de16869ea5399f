"""Margin as an objective in serving (`MGRECS_MARGIN_WEIGHT`): the same cached list served by
relevance at weight 0 and re-ordered by the products' margin (price - cost, read from the
catalogue with the rules) above it, the extra candidates asked as a filter asks them."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.products import StoredProduct, insert_products, margins
from support.helpers import asgi_client

URL = "/v1/users/c1/recommendations"


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """p1..p6 at 10 x n with margin n x n (cost = price - margin), p7 without a cost; c1's
    cached list p1..p7, best first."""
    await insert_products(
        pool, [StoredProduct(f"p{n}", f"product {n}", "tea", 10.0 * n) for n in range(1, 8)]
    )
    for n in range(1, 7):
        await pool.execute(
            "UPDATE products SET cost = price - $2 WHERE product_id = $1", f"p{n}", float(n * n)
        )
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    written = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    cached = [{"product_id": f"p{n}", "score": round(1 - n / 10, 2)} for n in range(1, 8)]
    await put_current(pool, USERS, "c1", cached, written)


async def served(settings: Settings, weight: float, limit: int) -> list[dict[str, object]]:
    settings.margin_weight = weight
    settings.api_answer_cache_seconds = 0
    async with asgi_client(create_app(settings)) as client:
        response = await client.get(URL, params={"limit": limit})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_the_store_reads_margins_of_products_with_price_and_cost(
    shop: None, pool: asyncpg.Pool
) -> None:
    assert await margins(pool) == {f"p{n}": float(n * n) for n in range(1, 7)}


async def test_weight_0_serves_by_relevance_and_1_by_margin(shop: None, settings: Settings) -> None:
    plain = await served(settings, 0.0, 3)
    assert [i["product_id"] for i in plain] == ["p1", "p2", "p3"]
    by_margin = await served(settings, 1.0, 3)
    # 3 x (1 + rules_extra_candidates 1.0) = 6 candidates: p1..p6, p6 the best margin.
    assert [i["product_id"] for i in by_margin] == ["p6", "p5", "p4"]
    assert [i["score"] for i in by_margin] == [0.4, 0.5, 0.6]  # scores kept: only the order moves


async def test_a_middle_weight_lifts_high_margin_products_part_way(
    shop: None, settings: Settings
) -> None:
    """Relevance 0.9..0.3 and margins 1, 4, 9, 16, 25, 36 (p7 unknown: the lowest), each
    scaled to 0-1 over the candidates, blended half and half."""
    items = [i["product_id"] for i in await served(settings, 0.5, 5)]
    assert items == ["p6", "p5", "p1", "p4", "p2"]


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_weight_outside_0_to_1_is_refused(weight: float) -> None:
    with pytest.raises(ValidationError, match="margin_weight"):
        Settings(margin_weight=weight)
