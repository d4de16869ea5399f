"""Trending products in the model's popularity fill, globally and per region, on a planted
shop whose answers are known (the formula itself: test_recipes.py, the trending recipe)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mgrecs.engine import bands, user_lists
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction, Scored
from mgrecs.engine.trending import measure_rise, trend_strength

NOW = datetime(2026, 11, 1, tzinfo=UTC)
WEEKS = (2, 9, 16, 23, 30, 37)
"""Days ago of six weekly sales: one in the 7-day window, four in the 28 days before."""


def sale(customer: str, product: str, region: str | None, days_ago: float) -> Interaction:
    return Interaction(customer, product, 1, NOW - timedelta(days=days_ago), region)


def weekly(product: str, region: str, per_week: int) -> list[Interaction]:
    """A steady seller: `per_week` new customers every week for six weeks."""
    return [
        sale(f"{product}-{region}-{day}-{n}", product, region, day)
        for day in WEEKS
        for n in range(per_week)
    ]


def burst(product: str, region: str | None, customers: int, days_ago: float) -> list[Interaction]:
    """`customers` new customers of `product` `days_ago`, none before."""
    return [
        sale(f"{product}-{region}-new-{n}", product, region, days_ago) for n in range(customers)
    ]


def planted() -> list[Interaction]:
    """S1, S2 steady best-sellers in A (2 a week), P steady in A (1 a week); R a steady staple
    of B (4 a week) that 5 customers of A started buying in the last days: rising in A only,
    not over both regions ((9 + 3) / (16 x 7/28 + 3) = 1.7 < 2). G new in both regions (3
    each), U new among customers without a region (4), O sold once, yesterday, in A."""
    lines = weekly("S1", "A", 2) + weekly("S2", "A", 2) + weekly("P", "A", 1)
    lines += weekly("R", "B", 4) + weekly("S1", "B", 1)
    lines += burst("R", "A", 5, 2) + burst("G", "A", 3, 2) + burst("G", "B", 3, 2)
    lines += burst("U", None, 4, 1) + burst("O", "A", 1, 1)
    return lines


@pytest.fixture(scope="module")
def shop() -> RecommenderModel:
    return RecommenderModel.fit(planted())


def reasons(items: list[Scored]) -> list[tuple[str, str]]:
    return [(s.item_id, s.reason) for s in items]


def assert_sorted_in_band(items: list[Scored], ceiling: float) -> None:
    scores = [s.score for s in items]
    assert all(0.0 <= s <= ceiling for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores


def test_a_new_customer_of_the_rising_region_sees_it_trending_there(
    shop: RecommenderModel,
) -> None:
    """Fill slots 3 and 6 are trending ones: R (in A), then G is already in a popular slot,
    so U (trending over all customers) takes slot 6."""
    answer = shop.recommend([], "A", 7)
    assert reasons(answer) == [
        ("S1", "popular in A"),  # a steady best-seller stays popular, not trending
        ("S2", "popular in A"),
        ("R", "trending in A"),
        ("P", "popular in A"),
        ("G", "popular in A"),
        ("U", "trending"),
        ("O", "popular in A"),  # one recent sale is no trend
    ]
    assert answer[2].score == answer[1].score and answer[5].score == answer[4].score
    assert_sorted_in_band(answer, bands.HIT_FLOOR)


def test_the_product_rising_in_one_region_is_not_trending_in_another(
    shop: RecommenderModel,
) -> None:
    """In B, R is the steady best-seller it always was; G rose in B too."""
    answer = shop.recommend([], "B", 7)
    assert reasons(answer) == [
        ("R", "popular in B"),
        ("S1", "popular in B"),
        ("G", "trending in B"),
        ("S2", "popular"),
        ("P", "popular"),
        ("U", "trending"),
        ("O", "popular"),
    ]
    assert_sorted_in_band(answer, bands.HIT_FLOOR)


def test_without_a_region_only_trends_over_all_customers_count(shop: RecommenderModel) -> None:
    for region in (None, "no-such-region"):
        assert reasons(shop.recommend([], region, 7)) == [
            ("R", "popular"),  # 1.7 over all customers: not trending
            ("S1", "popular"),
            ("G", "trending"),
            ("S2", "popular"),
            ("P", "popular"),
            ("U", "trending"),
            ("O", "popular"),
        ]


def test_popular_gives_the_same_mix_scaled_to_one(shop: RecommenderModel) -> None:
    for region in ("A", "B", None):
        fill = shop.recommend([], region, 7)
        popular = shop.popular(region, 7)
        assert reasons(popular) == reasons(fill)
        assert popular[0].score == 1.0
        assert [s.score for s in popular] == pytest.approx(
            [s.score / bands.HIT_FLOOR for s in fill]
        )
        assert_sorted_in_band(popular, 1.0)
    assert shop.popular("A", 0) == [] and shop.popular("A", -1) == []


def test_the_fill_behind_a_history_skips_purchases_and_counts_its_own_slots(
    shop: RecommenderModel,
) -> None:
    """A customer of A who bought S1 and R (nothing co-occurs: every line is a lone sale):
    the fill starts after the hits, R is not offered again, G takes the first trending slot."""
    assert reasons(shop.recommend(["S1", "R"], "A", 4)) == [
        ("S2", "popular in A"),
        ("P", "popular in A"),
        ("G", "trending in A"),
        ("O", "popular in A"),
    ]


def test_batch_inference_mixes_trending_products_like_single_calls(
    shop: RecommenderModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customers of A get two trending slots (R or G in A, then U), the others one: the
    only trending products left for them are G and U, and one of those sits in a popular
    slot or was bought."""
    monkeypatch.setattr(user_lists, "CHUNK_CELLS", 7 * 5)  # several chunks of 5 customers
    everyone = shop.recommend_all(6)
    assert len(everyone) == len(shop.customer_ids)
    for customer, answer in everyone.items():
        history, region = shop.history(customer), shop.region_of(customer)
        assert answer == shop.recommend(history, region, 6)
        assert_sorted_in_band(answer, bands.HIT_FLOOR)
        trending = [s.reason for s in answer if s.reason.startswith("trending")]
        assert trending == (["trending in A", "trending"] if region == "A" else ["trending"])


def test_save_and_load_keep_the_trends(shop: RecommenderModel, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    shop.save(path)
    loaded = RecommenderModel.load(path)
    for region in ("A", "B", None):
        assert loaded.popular(region, 7) == shop.popular(region, 7)
        assert loaded.recommend([], region, 7) == shop.recommend([], region, 7)
    assert any(s.reason == "trending in A" for s in loaded.popular("A", 7))


def test_data_younger_than_the_window_has_no_trends() -> None:
    """Everything is new when nothing was sold before the window: no past, no rise."""
    lines = burst("X", "A", 6, 1) + burst("Y", "A", 4, 3) + burst("Z", None, 5, 2)
    model = RecommenderModel.fit(lines)
    # Without the rule, Z (rising 8/3 over all customers) would take slot 3 as "trending".
    assert reasons(model.popular("A", 3)) == [
        ("X", "popular in A"),
        ("Y", "popular in A"),
        ("Z", "popular"),
    ]
    assert [s.reason for s in model.popular(None, 3)] == ["popular"] * 3


def test_one_sale_is_no_trend_whatever_the_ratio() -> None:
    """Item 0: one new customer this week; item 1: three; both sold nothing in the 28 days
    before, item 2 sold then. With little smoothing both ratios are high; only item 1 has
    the recent purchasers a trend needs."""
    day = 86_400.0
    now = 100 * day
    customer = np.array([0, 1, 2, 3, 4], dtype=np.int64)
    item = np.array([0, 1, 1, 1, 2], dtype=np.int64)
    time = np.array([now - day, now - day, now - 2 * day, now - 3 * day, now - 20 * day])
    rise = measure_rise(customer, item, time, 3, now, smoothing=0.5)
    np.testing.assert_allclose(rise.ratio, [3.0, 7.0, 0.5 / (7 / 28 + 0.5)])
    assert rise.recent.tolist() == [1.0, 3.0, 0.0]
    assert trend_strength(rise).tolist() == [0.0, 7.0, 0.0]
    assert trend_strength(rise, min_recent=1).tolist() == [3.0, 7.0, 0.0]
    assert trend_strength(rise, threshold=8.0).tolist() == [0.0, 0.0, 0.0]
