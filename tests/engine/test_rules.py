"""Product metadata in the model: filters (inactive, category, price), promoted products and
the content back-off of similar items, on a small hand-built shop whose answers are known."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mgrecs.engine import bands, user_lists
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction, ProductInfo, Scored
from mgrecs.engine.rules import Rules, insert_promoted, promotion_slots

NOW = datetime(2026, 11, 1, tzinfo=UTC)

PRODUCTS = [
    ProductInfo("A", "Green tea 100g", "tea", 4.0),
    ProductInfo("B", "Teapot", "tea", 30.0),
    ProductInfo("C", "Green tea 500g", "tea", 12.0),
    ProductInfo("N", "Crisps", "snacks", 3.0),
    ProductInfo("S", "Pretzels", "snacks", 25.0),
    ProductInfo("X", "Black tea", "tea", 4.0, active=False),  # bought with A, withdrawn
    ProductInfo("T1", "Green tea 250g", "tea", 10.0),  # in the catalogue, never bought
    ProductInfo("T2", "Herbal tea 250g", "tea", 9.0),  # in the catalogue, never bought
]


def line(customer: str, product: str, region: str | None) -> Interaction:
    return Interaction(customer, product, 1, NOW - timedelta(days=1), region)


def shop_lines() -> list[Interaction]:
    """A+B bought together by 8; A+X by 5 (X the most popular, but inactive); N popular in
    north, S in south; C only bought with A, once."""
    lines: list[Interaction] = []
    for n in range(8):
        region = "north" if n < 4 else "south"
        lines += [line(f"ab{n}", "A", region), line(f"ab{n}", "B", region)]
    for n in range(5):
        lines += [line(f"ax{n}", "A", "north"), line(f"ax{n}", "X", "north")]
    for n in range(3):
        lines += [line(f"n{n}", "N", "north"), line(f"s{n}", "S", "south")]
    lines += [line("ac", "A", "north"), line("ac", "C", "north")]
    return lines


@pytest.fixture(scope="module")
def shop() -> RecommenderModel:
    return RecommenderModel.fit(shop_lines(), products=PRODUCTS)


def ids(items: list[Scored]) -> list[str]:
    return [s.item_id for s in items]


def assert_sorted_in_range(items: list[Scored]) -> None:
    scores = [s.score for s in items]
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores


def test_the_inactive_product_is_never_recommended_anywhere(shop: RecommenderModel) -> None:
    unfiltered = RecommenderModel.fit(shop_lines())  # no catalogue: X is everywhere
    assert "X" in ids(unfiltered.recommend(["A"], "north", 10))
    assert ids(unfiltered.popular(None, 1)) == ["A"] and "X" in ids(unfiltered.popular(None, 3))
    for region in ("north", "south", None):
        assert "X" not in ids(shop.recommend(["A"], region, 10))
        assert "X" not in ids(shop.recommend([], region, 10))
        assert "X" not in ids(shop.popular(region, 10))
    for answer in shop.recommend_all(10).values():
        assert "X" not in ids(answer)
    for item in [*shop.item_ids, "T1", "T2"]:
        assert "X" not in ids(shop.similar_items(item, 10))
    assert "X" not in ids(
        shop.recommend(["B"], None, 10, rules=Rules(promoted=["X"], promoted_share=0.5))
    )
    ranked = shop.rank(["A"], "north", ["X", "B", "ghost"])
    assert ranked == [ranked[0], Scored("ghost", 0.0, "unknown item")] + [
        Scored("X", 0.0, "inactive product")
    ]
    assert ranked[0].item_id == "B"


def test_category_filter_keeps_only_that_category(shop: RecommenderModel) -> None:
    # A's partners (B, C) are tea: only the snacks are left, regional popularity first.
    assert [
        (s.item_id, s.reason)
        for s in shop.recommend(["A"], "north", 5, rules=Rules(categories={"snacks"}))
    ] == [
        ("N", "popular in north"),
        ("S", "popular"),
    ]
    assert ids(shop.recommend(["N"], "north", 5, rules=Rules(categories={"tea"}))) == [
        "A",
        "B",
        "C",
    ]
    assert shop.recommend(["A"], None, 5, rules=Rules(categories={"no-such-category"})) == []


def test_price_filter_keeps_only_that_price_range(shop: RecommenderModel) -> None:
    assert ids(shop.recommend(["A"], "north", 5, rules=Rules(min_price=5, max_price=20))) == ["C"]
    assert ids(shop.recommend(["A"], "north", 5, rules=Rules(min_price=25))) == ["B", "S"]
    assert ids(shop.recommend([], "north", 5, rules=Rules(max_price=3.5))) == ["N"]
    assert ids(shop.popular("north", 10)) == ["A", "B", "N", "C", "S"]  # all but X


def test_promoted_products_take_their_share_at_fixed_positions(shop: RecommenderModel) -> None:
    organic = shop.recommend(["A"], "north", 5)
    assert ids(organic) == ["B", "C", "N", "S"]
    # A is bought, X inactive, "ghost" unknown: S and T1 are eligible. k=5, share 0.4 ->
    # 2 slots, positions 2 and 5 (1-based); S leaves its organic place for its slot.
    promoted = shop.recommend(
        ["A"], "north", 5, rules=Rules(promoted=["A", "X", "ghost", "S", "T1"], promoted_share=0.4)
    )
    assert [(s.item_id, s.reason) for s in promoted] == [
        ("B", organic[0].reason),
        ("S", "promoted"),
        ("C", organic[1].reason),
        ("N", organic[2].reason),
        ("T1", "promoted"),
    ]
    assert promoted[1].score == promoted[2].score == organic[1].score  # displaced C
    assert promoted[4].score == promoted[3].score == organic[2].score  # nothing after: N's
    assert_sorted_in_range(promoted)
    # A share that rounds to no slot still gets one, at the end.
    one = shop.recommend(["A"], "north", 4, rules=Rules(promoted=["T2"], promoted_share=0.05))
    assert ids(one) == ["B", "C", "N", "T2"] and one[3].reason == "promoted"
    # Promotion applies to similar items too (never the product itself): 1 slot of 3.
    similar = shop.similar_items("A", 3, rules=Rules(promoted=["A", "T2"], promoted_share=0.34))
    assert ids(similar) == ["B", "C", "T2"] and similar[2].reason == "promoted"


@pytest.mark.parametrize(
    ("k", "share", "available", "expected"),
    [
        (10, 0.1, 5, [9]),
        (10, 0.2, 5, [4, 9]),
        (10, 0.2, 1, [9]),
        (10, 0.25, 5, [2, 5, 9]),  # 2.5 slots round half up to 3
        (5, 0.1, 3, [4]),
        (4, 0.5, 3, [1, 3]),
        (10, 0.0, 3, []),
        (10, 0.5, 0, []),
    ],
)
def test_promotion_slots(k: int, share: float, available: int, expected: list[int]) -> None:
    assert promotion_slots(k, share, available) == expected


def test_insert_promoted_scores_as_the_displaced_item() -> None:
    organic = [Scored(f"o{n}", 1.0 - n / 10, "bought x") for n in range(6)]
    merged = insert_promoted(organic, ["p", "o1", "q"], 6, 0.5)
    assert [(s.item_id, s.score, s.reason) for s in merged] == [
        ("o0", 1.0, "bought x"),
        ("p", 0.8, "promoted"),
        ("o2", 0.8, "bought x"),
        ("o1", 0.7, "promoted"),
        ("o3", 0.7, "bought x"),
        ("q", 0.6, "promoted"),
    ]


def test_content_back_off_for_a_product_nobody_bought(shop: RecommenderModel) -> None:
    # T1 (10.00, band [8, 16)): C and T2 share its band, C first by index (both Jaccard
    # 0.5); A (4.00) is one band away with Jaccard 0.5, B (30.00) too with 0.
    similar = shop.similar_items("T1", 5)
    assert ids(similar) == ["C", "T2", "A", "B", "N"]
    assert [s.reason for s in similar[:4]] == ["same category as T1"] * 4
    assert similar[4].reason == "popular"
    assert all(s.score <= bands.HIT_FLOOR for s in similar)
    assert similar[0].score == similar[1].score > similar[2].score > similar[3].score
    assert_sorted_in_range(similar)
    assert shop.similar_items("no-such-product", 5) == []


def test_content_back_off_after_a_single_co_purchase_neighbour(shop: RecommenderModel) -> None:
    # C was bought only with A. Then tea: T1 (same band, Jaccard 0.5), T2 (same band,
    # 0.2), B (next band up); X is inactive. Then global popularity.
    similar = shop.similar_items("C", 6)
    assert [(s.item_id, s.reason) for s in similar] == [
        ("A", "bought together with C"),
        ("T1", "same category as C"),
        ("T2", "same category as C"),
        ("B", "same category as C"),
        ("N", "popular"),
        ("S", "popular"),
    ]
    assert similar[0].score > bands.HIT_FLOOR >= similar[1].score
    assert similar[3].score > bands.CONTENT_FLOOR >= similar[4].score
    assert_sorted_in_range(similar)


def test_similar_items_with_filters(shop: RecommenderModel) -> None:
    # A's partners: B (30.00) is out of range, X inactive: only C, then tea in range.
    similar = shop.similar_items("A", 5, rules=Rules(max_price=20))
    assert ids(similar) == ["C", "T1", "T2", "N"]
    assert ids(shop.similar_items("A", 5, rules=Rules(categories={"snacks"}))) == ["N", "S"]


def test_save_and_load_keep_the_catalogue(shop: RecommenderModel, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    shop.save(path)
    loaded = RecommenderModel.load(path)
    for item in [*shop.item_ids, "T1", "T2"]:
        assert loaded.similar_items(item, 6) == shop.similar_items(item, 6)
    for model in (loaded, shop):
        answer = model.recommend(
            ["N"],
            "north",
            4,
            rules=Rules(categories={"tea"}, max_price=20.0, promoted=["T2"], promoted_share=0.3),
        )
        assert answer == [
            Scored("A", answer[0].score, "popular in north"),
            Scored("C", answer[1].score, "popular in north"),
            Scored("T2", answer[1].score, "promoted"),
        ]
    assert loaded.recommend_all(5) == shop.recommend_all(5)
    assert loaded.popular(None, 10) == shop.popular(None, 10)


def random_catalogue_data(seed: int = 5) -> tuple[list[Interaction], list[ProductInfo]]:
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(200):
        region = ["north", "south", "west"][c % 3]
        for p in rng.choice(30, size=int(rng.integers(1, 7)), replace=False):
            lines.append(Interaction(f"c{c}", f"p{p}", 1, NOW - timedelta(days=float(p)), region))
    products = [
        ProductInfo(f"p{p}", f"item {p % 4}", ["a", "b", "c"][p % 3], float(1 + p), p % 7 != 0)
        for p in range(34)
    ]
    return lines, products


def test_recommend_all_equals_recommend_under_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    lines, products = random_catalogue_data()
    model = RecommenderModel.fit(lines, products=products)
    monkeypatch.setattr(user_lists, "CHUNK_CELLS", 30 * 9)  # several chunks
    inactive = {p.product_id for p in products if not p.active}
    sample = model.customer_ids[::4]
    filters = Rules(categories={"a", "b"}, min_price=3.0, max_price=25.0)
    promotion = Rules(promoted=["p33", "p3", "p14", "p7"], promoted_share=0.25)
    both = replace(filters, promoted=promotion.promoted, promoted_share=promotion.promoted_share)
    for rules in (Rules(), filters, promotion, both):
        batch = model.recommend_all(8, sample, rules=rules)
        for customer in sample:
            history, region = model.history(customer), model.region_of(customer)
            single = model.recommend(history, region, 8, rules=rules)
            assert batch[customer] == single
            assert not inactive & set(ids(single))
            assert_sorted_in_range(single)
    # One eligible promoted product, share 0.25 of 8: one slot, the last, with the score of
    # the organic item it pushes off the list.
    organic = model.recommend_all(8, sample)
    promoted = model.recommend_all(8, sample, rules=Rules(promoted=["p33"], promoted_share=0.25))
    for customer, answer in promoted.items():
        assert answer[:7] == organic[customer][:7]
        assert answer[7] == Scored("p33", organic[customer][7].score, "promoted")
