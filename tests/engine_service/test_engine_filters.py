"""Filters and promotions in the engine service, sent by the real aioboto3 client as
Personalize takes them: filterArn + filterValues, promotions, in GetRecommendations (user
and similar-items campaigns) and GetPersonalizedRanking."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from botocore.exceptions import ClientError

from mgrecs.common.personalize import runtime_client
from mgrecs.common.settings import Settings
from mgrecs.engine.records import Interaction, ProductInfo
from mgrecs.engine_service.app import create_app
from support.engine import item_ids, put_purchase, recommend, register_model
from support.helpers import serve

NOW = datetime.now(UTC)

PRODUCTS = [
    ProductInfo("sh1", "Runner", "shoes", 50.0),
    ProductInfo("sh2", "Boot", "shoes", 120.0),
    ProductInfo("sh3", "Sandal", "shoes", 80.0),
    ProductInfo("bg1", "Tote", "bags", 30.0),
    ProductInfo("bg2", "Backpack", "bags", 80.0),
    ProductInfo("ht1", "Cap", "hats", 10.0),
    ProductInfo("old", "Clog", "shoes", 40.0, active=False),
]

FILTERS = {
    "shoes-any": "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    "price-band": "INCLUDE ItemID WHERE Items.PRICE > $MIN AND Items.PRICE < $MAX"
    ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
    "cheap": "INCLUDE ItemID WHERE Items.PRICE < 60",
    "no-bags": 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("bags")',
    "broken": "INCLUDE ItemID WHERE Items.COLOR IN ($COLOR)",
}


def shop_lines() -> list[Interaction]:
    """Distinct buyers, all in the north: ht1 9, sh2 7, sh1 6, bg1 5, bg2 3, old 2 (inactive),
    sh3 1. sh1 and bg1 are bought together by u0..u4; everything else alone."""
    lines = []
    for n in range(5):
        lines += [
            Interaction(f"u{n}", p, 1, NOW - timedelta(days=1), "north") for p in ("sh1", "bg1")
        ]
    for product, buyers in [("ht1", 9), ("sh2", 7), ("sh1", 1), ("bg2", 3), ("old", 2), ("sh3", 1)]:
        lines += [
            Interaction(f"{product}-{n}", product, 1, NOW - timedelta(days=1), "north")
            for n in range(buyers)
        ]
    return lines


def arn(settings: Settings, name: str) -> str:
    return settings.filter_arn_prefix + name


@pytest.fixture
def engine_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"engine_filters": settings.engine_filters | FILTERS})


@pytest.fixture
async def engine(engine_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[str]:
    await register_model(pool, engine_settings, "v1", shop_lines(), PRODUCTS)
    async with serve(create_app(engine_settings), engine_settings.engine_port) as url:
        yield url


async def categories(settings: Settings, values: str, **request: Any) -> list[str]:
    """User recommendations through the default category filter (purchases excluded)."""
    response = await recommend(
        settings,
        filterArn=settings.category_filter_arn,
        filterValues={"CATEGORY": values},
        **request,
    )
    return item_ids(response)


async def aws_error(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        await call
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Message"],
    )


async def test_category_filter_with_placeholder_values(
    engine: str, engine_settings: Settings
) -> None:
    unfiltered = await recommend(engine_settings, userId="u0", numResults=10)
    assert item_ids(unfiltered) == ["ht1", "sh2", "bg2", "sh3"]  # bought and inactive left out
    assert await categories(engine_settings, '"shoes"', userId="u0") == ["sh2", "sh3"]
    both = await categories(engine_settings, '"shoes","bags"', userId="u0")
    assert both == ["sh2", "bg2", "sh3"]
    assert await categories(engine_settings, '"no-such-category"', userId="u0") == []
    # Unknown customers get the category's popular products.
    assert await categories(engine_settings, '"bags"', userId="stranger") == ["bg1", "bg2"]


async def test_price_range_with_strict_bounds(engine: str, engine_settings: Settings) -> None:
    response = await recommend(
        engine_settings,
        userId="u0",
        filterArn=arn(engine_settings, "price-band"),
        filterValues={"MIN": "30", "MAX": '"120"'},
    )
    # Over 30 and under 120, not bought by u0: bg1 (30.00) and sh2 (120.00) are out.
    assert item_ids(response) == ["bg2", "sh3"]
    cheap = await recommend(
        engine_settings, userId="stranger", filterArn=arn(engine_settings, "cheap")
    )
    assert item_ids(cheap) == ["ht1", "sh1", "bg1"]


async def test_exclude_purchased_follows_the_filter(engine: str, engine_settings: Settings) -> None:
    await put_purchase(engine_settings, "newcomer", "sh2", "evt-sh2")
    assert await categories(engine_settings, '"shoes"', userId="newcomer") == ["sh1", "sh3"]
    # A filter that does not exclude purchases lets what the customer bought back in.
    kept = await recommend(
        engine_settings,
        userId="newcomer",
        filterArn=arn(engine_settings, "shoes-any"),
        filterValues={"CATEGORY": '"shoes"'},
    )
    assert item_ids(kept) == ["sh2", "sh1", "sh3"]
    no_bags = await recommend(
        engine_settings, userId="u0", filterArn=arn(engine_settings, "no-bags")
    )
    assert set(item_ids(no_bags)) == {"sh1", "ht1", "sh2", "sh3"}


async def test_without_a_filter_the_exclude_purchased_setting_decides(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    await register_model(pool, engine_settings, "v1", shop_lines(), PRODUCTS)
    keeping = engine_settings.model_copy(update={"exclude_purchased": False})
    async with serve(create_app(keeping), keeping.engine_port):
        everything = await recommend(keeping, userId="u0", numResults=10)
        assert {"sh1", "bg1"} <= set(item_ids(everything))
        # A filter that excludes purchases still does.
        assert await categories(keeping, '"shoes"', userId="u0") == ["sh2", "sh3"]


async def test_promotion_takes_its_share_with_reason_and_name(
    engine: str, engine_settings: Settings
) -> None:
    organic = await recommend(engine_settings, userId="ht1-0", numResults=5)
    assert item_ids(organic) == ["sh2", "sh1", "bg1", "bg2", "sh3"]
    promoted = await recommend(
        engine_settings,
        userId="ht1-0",
        numResults=5,
        promotions=[
            {
                "name": "bag-week",
                "percentPromotedItems": 20,
                "filterArn": arn(engine_settings, "shoes-any"),
                "filterValues": {"CATEGORY": '"bags"'},
            }
        ],
    )
    # 20 % of 5 slots: one, the last; the most popular bag (bg1) moves there.
    assert item_ids(promoted) == ["sh2", "sh1", "bg2", "sh3", "bg1"]
    items = promoted["itemList"]
    assert items[4]["reason"] == ["promoted"] and items[4]["promotionName"] == "bag-week"
    assert items[4]["score"] == items[3]["score"]
    assert all("promotionName" not in item for item in items[:4])
    # Promoted products also pass the request's filter: cheap shoes among shoes.
    shoes = await recommend(
        engine_settings,
        userId="ht1-0",
        numResults=5,
        filterArn=engine_settings.category_filter_arn,
        filterValues={"CATEGORY": '"shoes"'},
        promotions=[
            {
                "name": "cheap",
                "percentPromotedItems": 20,
                "filterArn": arn(engine_settings, "cheap"),
            }
        ],
    )
    assert item_ids(shoes) == ["sh2", "sh3", "sh1"]
    assert shoes["itemList"][2]["promotionName"] == "cheap"


async def test_similar_items_and_ranking_are_filtered(
    engine: str, engine_settings: Settings
) -> None:
    similar = engine_settings.similar_campaign_arn
    assert await categories(engine_settings, '"bags"', campaignArn=similar, itemId="sh1") == [
        "bg1",
        "bg2",
    ]
    # Naming a customer lets the filter leave out what they bought.
    bags_for_u0 = await categories(
        engine_settings, '"bags"', campaignArn=similar, itemId="sh1", userId="u0"
    )
    assert bags_for_u0 == ["bg2"]
    async with runtime_client(engine_settings) as client:
        shoes = await client.get_personalized_ranking(
            campaignArn=engine_settings.ranking_campaign_arn,
            userId="u0",
            inputList=["ht1", "sh1", "sh2", "ghost", "bg2"],
            filterArn=engine_settings.category_filter_arn,
            filterValues={"CATEGORY": '"shoes"'},
        )
        no_bags = await client.get_personalized_ranking(
            campaignArn=engine_settings.ranking_campaign_arn,
            userId="u0",
            inputList=["ghost", "bg2", "sh2", "sh1", "ht1"],
            filterArn=arn(engine_settings, "no-bags"),
        )
    # Bought sh1, other categories and the unknown "ghost" (no category) are dropped.
    assert item_ids(shoes, "personalizedRanking") == ["sh2"]
    # An EXCLUDE filter keeps what it does not name, unknown items last.
    assert item_ids(no_bags, "personalizedRanking") == ["sh1", "ht1", "sh2", "ghost"]


async def test_unknown_filter_is_resource_not_found(engine: str, engine_settings: Settings) -> None:
    missing = arn(engine_settings, "no-such-filter")
    assert await aws_error(recommend(engine_settings, userId="u0", filterArn=missing)) == (
        "ResourceNotFoundException",
        404,
        f"Resource {missing} does not exist.",
    )
    promotion = {"percentPromotedItems": 20, "filterArn": missing}
    code, status, _ = await aws_error(
        recommend(engine_settings, userId="u0", promotions=[promotion])
    )
    assert (code, status) == ("ResourceNotFoundException", 404)


INVALID: list[tuple[dict[str, Any], str]] = [
    (
        {"filterArn": "broken", "filterValues": {"COLOR": '"red"'}},
        "Items.COLOR is not supported",
    ),
    ({"filterArn": "mgrecs-category"}, "filterValues must give CATEGORY"),
    (
        {"filterArn": "mgrecs-category", "filterValues": {"CATEGORY": "shoes"}},
        "filterValues[CATEGORY] must be double-quoted values separated by commas",
    ),
    (
        {"filterArn": "price-band", "filterValues": {"MIN": "cheap", "MAX": "9"}},
        "filterValues[MIN] must be one number",
    ),
    (
        {"filterArn": "cheap", "filterValues": {"MAX": "9"}},
        "filterValues has MAX; the filter uses no placeholders",
    ),
    ({"filterValues": {"CATEGORY": '"shoes"'}}, "filterValues given without a filterArn"),
    (
        {"promotions": [{"percentPromotedItems": 20, "filterArn": "shoes-any"}]},
        "promotions[0]: filterValues must give CATEGORY",
    ),
    (
        {"promotions": [{"percentPromotedItems": 101, "filterArn": "cheap"}]},
        "promotions.0.percentPromotedItems",
    ),
]
"""Request members (filter names standing for their ARNs) and what the error says."""


async def test_malformed_expressions_and_values_are_invalid_input(
    engine: str, engine_settings: Settings
) -> None:
    for request_members, message in INVALID:
        members = dict(request_members)
        if "filterArn" in members:
            members["filterArn"] = arn(engine_settings, members["filterArn"])
        if "promotions" in members:
            members["promotions"] = [
                promotion | {"filterArn": arn(engine_settings, promotion["filterArn"])}
                for promotion in members["promotions"]
            ]
        code, status, text = await aws_error(recommend(engine_settings, userId="u0", **members))
        assert (code, status, message in text) == ("InvalidInputException", 400, True), text
