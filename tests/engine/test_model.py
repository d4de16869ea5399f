"""The recommender model (a user-personalization recipe, popularity, co-occurrence) on
small hand-built data whose right answers are known."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mgrecs.engine import bands, user_lists
from mgrecs.engine.model import DEFAULT_RECIPE, RecommenderModel
from mgrecs.engine.recipes import make_recipe
from mgrecs.engine.records import Interaction, ProductInfo, Scored
from mgrecs.engine.rules import Rules

COLLABORATIVE: dict[str, dict[str, Any]] = {
    "rp3beta": {},
    "itemknn": {"shrink": 1.0},
    "ease": {"l2": 1.0},
    "als": {"factors": 4, "regularization": 0.1, "iterations": 20},
}
"""The collaborative recipes, with parameters that suit a few dozen customers."""

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def line(
    customer: str,
    product: str,
    region: str | None = "north",
    days_ago: float = 1.0,
    quantity: int = 1,
) -> Interaction:
    return Interaction(customer, product, quantity, NOW - timedelta(days=days_ago), region)


def bundle_data() -> list[Interaction]:
    """A+B bought together by 8 customers; N popular in north, S popular in south; C rare."""
    lines: list[Interaction] = []
    for n in range(8):
        region = "north" if n < 4 else "south"
        lines += [line(f"ab{n}", "A", region), line(f"ab{n}", "B", region)]
    for n in range(3):
        lines.append(line(f"n{n}", "N", "north"))
        lines.append(line(f"s{n}", "S", "south"))
    lines += [line("ac", "A", "north"), line("ac", "C", "north")]
    return lines


@pytest.fixture(scope="module")
def bundle() -> RecommenderModel:
    return RecommenderModel.fit(bundle_data())


def random_data(seed: int = 7) -> list[Interaction]:
    """A few hundred customers with overlapping baskets over 40 products and 3 regions."""
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(300):
        region = ["north", "south", "west"][c % 3]
        for p in rng.choice(40, size=int(rng.integers(1, 8)), replace=False):
            # A skewed catalog: low product numbers sell more (p is drawn again to skew).
            product = f"p{min(p, int(rng.integers(0, 40)))}"
            lines.append(line(f"c{c}", product, region, float(rng.uniform(0, 200))))
    return lines


def assert_valid_scores(items: list[Scored]) -> None:
    scores = [s.score for s in items]
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores


def test_bundle_partner_is_the_most_similar_item(bundle: RecommenderModel) -> None:
    similar = bundle.similar_items("A", 3)
    assert similar[0].item_id == "B"
    assert similar[0].reason == "bought together with A"
    assert "A" not in [s.item_id for s in similar]
    assert bundle.similar_items("B", 1)[0].item_id == "A"
    assert_valid_scores(similar)


def test_similar_items_of_unknown_item_is_empty(bundle: RecommenderModel) -> None:
    assert bundle.similar_items("no-such-product", 5) == []


def test_item_without_co_purchases_gets_global_popularity_with_low_scores(
    bundle: RecommenderModel,
) -> None:
    similar = bundle.similar_items("N", 3)  # N buyers bought nothing else
    assert [s.item_id for s in similar] == [
        p.item_id for p in bundle.popular(None, 4) if p.item_id != "N"
    ][:3]
    assert all(s.reason == "popular" and s.score <= bands.HIT_FLOOR for s in similar)


def test_history_recommends_the_bundle_partner_and_says_why(bundle: RecommenderModel) -> None:
    recommended = bundle.recommend(["A"], "north", 3)
    assert recommended[0] == Scored("B", recommended[0].score, "bought A")
    assert "A" not in [s.item_id for s in recommended]
    assert_valid_scores(recommended)


def test_popularity_fill_scores_below_every_co_occurrence_hit(bundle: RecommenderModel) -> None:
    recommended = bundle.recommend(["A"], "south", 10)
    hits = [s for s in recommended if s.reason.startswith("bought ")]
    fill = [s for s in recommended if not s.reason.startswith("bought ")]
    assert {s.item_id for s in hits} == {"B", "C"}
    assert fill and min(s.score for s in hits) > max(s.score for s in fill)
    assert fill[0] == Scored("S", fill[0].score, "popular in south")
    assert fill[-1].reason == "popular"  # N was never bought in the south
    assert_valid_scores(recommended)


def test_regional_popularity_differs_by_region(bundle: RecommenderModel) -> None:
    north = [s.item_id for s in bundle.popular("north", 5)]
    south = [s.item_id for s in bundle.popular("south", 5)]
    assert north.index("N") < north.index("S")
    assert south.index("S") < south.index("N")
    assert bundle.popular("north", 5)[0].reason == "popular in north"
    assert_valid_scores(bundle.popular("north", 5))


def test_empty_history_gets_regional_popularity(bundle: RecommenderModel) -> None:
    for region in ("north", "south", None, "unknown-region"):
        expected = [p.item_id for p in bundle.popular(region, 4)]
        got = bundle.recommend([], region, 4)
        assert [s.item_id for s in got] == expected
        assert all(s.score <= bands.HIT_FLOOR for s in got)


def test_exclude_purchased_can_be_switched_off(bundle: RecommenderModel) -> None:
    excluded = [s.item_id for s in bundle.recommend(["A", "B"], None, 5)]
    included = [s.item_id for s in bundle.recommend(["A", "B"], None, 5, exclude_purchased=False)]
    assert "A" not in excluded and "B" not in excluded
    assert included[:2] == ["A", "B"] or included[:2] == ["B", "A"]


def test_unknown_history_items_are_ignored(bundle: RecommenderModel) -> None:
    assert bundle.recommend(["A", "ghost"], "north", 4) == bundle.recommend(["A"], "north", 4)
    assert bundle.recommend(["ghost"], "north", 4) == bundle.recommend([], "north", 4)


def test_rank_orders_known_items_and_keeps_unknown_ones_last_in_order(
    bundle: RecommenderModel,
) -> None:
    ranked = bundle.rank(["A"], "north", ["zz", "N", "yy", "B", "S", "zz"])
    assert [s.item_id for s in ranked] == ["B", "N", "S", "zz", "yy", "zz"]
    assert [s.reason for s in ranked[3:]] == ["unknown item"] * 3
    assert [s.score for s in ranked[3:]] == [0.0] * 3
    assert ranked[0].reason == "bought A"
    assert_valid_scores(ranked)


def test_one_purchaser_buying_often_counts_once() -> None:
    lines = [line("loyal", "P", quantity=3) for _ in range(10)]
    lines += [line("one", "Q"), line("two", "Q")]
    model = RecommenderModel.fit(lines)
    assert [s.item_id for s in model.popular(None, 2)] == ["Q", "P"]
    assert model.n_interactions == 3


def test_recent_purchases_outweigh_old_ones() -> None:
    lines = [line(f"old{n}", "OLD", days_ago=365) for n in range(3)]
    lines += [line(f"new{n}", "NEW", days_ago=2) for n in range(2)]
    model = RecommenderModel.fit(lines)
    assert [s.item_id for s in model.popular(None, 2)] == ["NEW", "OLD"]


def test_region_is_that_of_the_most_recent_order() -> None:
    model = RecommenderModel.fit(
        [
            line("c", "A", "north", days_ago=30),
            line("c", "B", "south", days_ago=3),
            line("c", "C", None, days_ago=1),
            line("d", "A", None),
        ]
    )
    assert model.region_of("c") == "south"
    assert model.region_of("d") is None
    assert model.region_of("nobody") is None
    assert model.history("c") == ["A", "B", "C"]
    assert model.history("nobody") == []


def test_neighbours_are_pruned_to_top_n() -> None:
    model = RecommenderModel.fit(random_data(), neighbours=2)
    for item in model.item_ids:
        hits = [s for s in model.similar_items(item, 10) if s.reason.startswith("bought")]
        assert len(hits) <= 2


@pytest.mark.parametrize("name", COLLABORATIVE)
def test_recommend_all_equals_recommend(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = RecommenderModel.fit(random_data(), recipe=make_recipe(name, **COLLABORATIVE[name]))
    monkeypatch.setattr(user_lists, "CHUNK_CELLS", 40 * 7)  # several chunks of 7 customers
    sample = model.customer_ids[::5] + ["not-a-customer"]
    batch = model.recommend_all(6, sample)
    assert set(batch) == set(sample) - {"not-a-customer"}
    for customer in batch:
        single = model.recommend(model.history(customer), model.region_of(customer), 6)
        assert batch[customer] == single
        assert_valid_scores(single)
        for scored in single:  # personal hits above the popularity band, fill within it
            fill = scored.reason.startswith(("popular", "trending"))
            assert (scored.score <= bands.HIT_FLOOR) == fill, scored
    everyone = model.recommend_all(6)
    assert len(everyone) == len(model.customer_ids)
    assert all(everyone[c] == batch[c] for c in batch)


def test_similar_all_equals_similar_items() -> None:
    products = [ProductInfo("never-bought", category="c1"), ProductInfo("p3", category="c1")]
    model = RecommenderModel.fit(random_data(), products=products)
    wanted = [*model.item_ids, "never-bought", "not-a-product"]
    batch = model.similar_all(wanted, 6)
    assert list(batch) == wanted
    assert batch["not-a-product"] == []
    assert batch["never-bought"]  # content neighbours
    for item in wanted:
        assert batch[item] == model.similar_items(item, 6)


def test_save_and_load_round_trip_gives_identical_results(tmp_path: Path) -> None:
    model = RecommenderModel.fit(random_data())
    path = tmp_path / "nested" / "model.npz"
    model.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temp file left
    loaded = RecommenderModel.load(path)
    assert loaded.customer_ids == model.customer_ids
    assert loaded.item_ids == model.item_ids
    assert loaded.recommend_all(5) == model.recommend_all(5)
    for item in model.item_ids[:10]:
        assert loaded.similar_items(item, 5) == model.similar_items(item, 5)
    for region in ("north", "south", "west", None):
        assert loaded.popular(region, 10) == model.popular(region, 10)
    customer = model.customer_ids[0]
    assert loaded.history(customer) == model.history(customer)
    assert loaded.region_of(customer) == model.region_of(customer)


def test_all_scores_are_within_zero_and_one_on_random_data() -> None:
    model = RecommenderModel.fit(random_data(seed=3))
    for customer, items in model.recommend_all(40).items():
        assert len(items) == min(40, len(model.item_ids) - len(model.history(customer)))
        assert_valid_scores(items)
    for item in model.item_ids:
        assert_valid_scores(model.similar_items(item, 40))


def test_model_without_data_answers_empty() -> None:
    model = RecommenderModel.fit([])
    assert model.recommend(["A"], "north", 5) == []
    assert model.popular(None, 5) == []
    assert model.recommend_all(5) == {}
    assert model.rank([], None, ["A"]) == [Scored("A", 0.0, "unknown item")]


@pytest.mark.parametrize("name", COLLABORATIVE)
def test_every_collaborative_recipe_recommends_the_bundle_partner(name: str) -> None:
    model = RecommenderModel.fit(bundle_data(), recipe=make_recipe(name, **COLLABORATIVE[name]))
    assert model.recipe.name == name
    recommended = model.recommend(["A"], "north", 3)
    assert recommended[0] == Scored("B", recommended[0].score, "bought A")
    assert recommended[0].score > bands.HIT_FLOOR
    assert "A" not in [s.item_id for s in recommended]
    assert_valid_scores(recommended)
    # A newcomer whose only purchase arrived after training folds in the same way.
    assert model.recommend(["B"], None, 1)[0].item_id == "A"


def test_default_recipe_is_used_when_none_is_given(bundle: RecommenderModel) -> None:
    assert bundle.recipe.name == DEFAULT_RECIPE
    assert bundle.recipe.params() == make_recipe(DEFAULT_RECIPE).params()


def test_the_recipe_orders_hits_and_reasons_name_co_purchased_history() -> None:
    """With popularity as the "personal" recipe every item is a hit, ranked by purchasers;
    hits that co-occur with the history say which item, the others are just for you."""
    model = RecommenderModel.fit(bundle_data(), recipe=make_recipe("popularity"))
    recommended = model.recommend(["A"], "north", 4)
    assert [(s.item_id, s.reason) for s in recommended] == [
        ("B", "bought A"),  # 8 purchasers
        ("N", "recommended for you"),  # 3, tie with S broken by id
        ("S", "recommended for you"),
        ("C", "bought A"),  # 1
    ]
    assert all(s.score > bands.HIT_FLOOR for s in recommended)
    assert_valid_scores(recommended)


def test_one_score_scale_keeps_customers_comparable() -> None:
    """Two customers' best items: the one with the stronger signal scores higher (a
    per-customer maximum would give both 1.0)."""
    model = RecommenderModel.fit(bundle_data(), recipe=make_recipe("popularity"))
    strong = model.recommend(["C"], None, 1)[0]  # best left: A, 9 purchasers
    weak = model.recommend(["A", "B"], None, 1)[0]  # best left: N, 3 purchasers
    assert (strong.item_id, weak.item_id) == ("A", "N")
    assert 1.0 > strong.score > weak.score > bands.HIT_FLOOR


@pytest.mark.parametrize("name", ["als", "ease"])
def test_save_and_load_keep_the_recipe(name: str, tmp_path: Path) -> None:
    model = RecommenderModel.fit(random_data(), recipe=make_recipe(name, **COLLABORATIVE[name]))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = RecommenderModel.load(path)
    assert (loaded.recipe.name, loaded.recipe.params()) == (name, model.recipe.params())
    assert loaded.recommend_all(8) == model.recommend_all(8)
    fresh = ["p1", "p7", "p30"]  # a history the model never saw
    assert loaded.recommend(fresh, "west", 8) == model.recommend(fresh, "west", 8)
    items = model.item_ids[:12]
    assert loaded.rank(fresh, "west", items) == model.rank(fresh, "west", items)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_model_file_of_an_old_format_is_a_clear_error(version: int, tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    buffer = io.BytesIO()
    meta = {"format": version, "customer_ids": [], "item_ids": [], "regions": []}
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=f"unsupported model format {version} .* retrain"):
        RecommenderModel.load(path)


def test_catalogue_products_without_purchases_stay_out_of_the_matrix(
    tmp_path: Path,
) -> None:
    products = [
        ProductInfo("A", "Oat milk 1l", "dairy", 2.0),
        ProductInfo("NEW", "Oat milk 2l", "dairy", 3.5),
        ProductInfo("OLD", "Oat milk 1l", "dairy", 2.0, active=False),
    ]
    model = RecommenderModel.fit(bundle_data(), products=products)
    assert model.item_ids == ["A", "B", "C", "N", "S"]  # NEW and OLD: catalogue only
    assert [(s.item_id, s.reason) for s in model.similar_items("NEW", 2)] == [
        ("A", "same category as NEW"),
        ("B", "popular"),
    ]
    # A has 2 co-purchase neighbours (B, C): the dairy back-off adds NEW, never OLD.
    assert [s.item_id for s in model.similar_items("A", 4)] == ["B", "C", "NEW", "N"]
    path = tmp_path / "model.npz"
    model.save(path)
    assert RecommenderModel.load(path).similar_items("NEW", 2) == model.similar_items("NEW", 2)


def test_without_a_catalogue_nothing_is_filtered_out(bundle: RecommenderModel) -> None:
    assert len(bundle.popular(None, 10)) == len(bundle.item_ids)
    no_price_known = Rules(min_price=1.0)  # no price known: no product matches
    assert bundle.recommend(["A"], None, 10, rules=no_price_known) == []
    assert bundle.similar_items("N", 2) == bundle.similar_items(
        "N", 2, rules=Rules(categories=None)
    )
