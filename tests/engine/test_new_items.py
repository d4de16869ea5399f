"""The choice and placement of new products (`mgrecs.engine.new_items`): pure, so checked
case by case and, for any input, by the properties the served lists rely on."""

from hypothesis import given
from hypothesis import strategies as st

from mgrecs.engine.new_items import (
    NewProduct,
    attribute_overlap,
    category_weights,
    new_for_customer,
    new_like,
    new_slot_count,
    place_new,
)
from mgrecs.engine.records import Scored


def organic(*ids: str) -> list[Scored]:
    return [Scored(p, 1.0 - n / 10, "bought X") for n, p in enumerate(ids)]


def test_customer_gets_its_most_bought_category_first() -> None:
    weights = category_weights(["tea", "tea", "snacks", None])
    candidates = [
        NewProduct("s1", "snacks", 5.0, buyers=9),
        NewProduct("t1", "tea", 1.0),
        NewProduct("t2", "tea", 2.0),
        NewProduct("t3", "tea", 0.0, buyers=1),
        NewProduct("o1", "other", 9.0, buyers=99),
    ]
    chosen = new_for_customer(candidates, weights, {"t2"}, 3)
    assert [(s.item_id, s.reason) for s in chosen] == [
        ("t3", "new in tea"),  # most buyers
        ("t1", "new in tea"),
        ("s1", "new in snacks"),
    ]


def test_similar_new_products_co_purchases_then_attributes() -> None:
    candidates = [
        NewProduct("a", "tea", 1.0, attributes={"brand": "Leaf"}),
        NewProduct("b", "tea", 1.0, attributes={"brand": "Leaf", "size": "1"}),
        NewProduct("c", "snacks", 1.0, bought_with=2),
        NewProduct("d", "snacks", 1.0),
        NewProduct("p", "tea", 1.0, bought_with=5),
    ]
    chosen = new_like("p", "tea", {"brand": "Leaf", "size": "1"}, candidates, set(), 10)
    assert [(s.item_id, s.reason) for s in chosen] == [
        ("c", "new, bought together with p"),
        ("b", "new in tea"),
        ("a", "new in tea"),
    ]
    assert attribute_overlap({"brand": "Leaf", "size": "1"}, {"brand": "Leaf", "size": 1}) == 1


def test_placement_at_the_promoted_slots_taking_the_displaced_score() -> None:
    placed = place_new(organic(*"abcdefghij"), [Scored("n", 0.0, "new in tea")], 10, 0.2)
    assert [s.item_id for s in placed] == [*"abcdefghi", "n"]
    placed = place_new(organic(*"abcdefghij"), [Scored("n", 0, "x"), Scored("m", 0, "y")], 10, 0.2)
    assert [s.item_id for s in placed] == [*"abcd", "n", *"efgh", "m"]
    assert placed[4].score == organic(*"abcdefghij")[4].score
    assert new_slot_count(10, 0.1, 10) == 1
    assert new_slot_count(10, 0.0, 10) == 0


def test_a_short_list_gets_them_at_its_end() -> None:
    placed = place_new(organic("a", "b"), [Scored("n", 0.0, "new in tea")], 10, 0.1)
    assert [(s.item_id, s.reason) for s in placed] == [
        ("a", "bought X"),
        ("b", "bought X"),
        ("n", "new in tea"),
    ]
    assert placed[2].score == placed[1].score


ids = st.text(alphabet="abcdefgh", min_size=1, max_size=2)


@given(
    st.lists(ids, unique=True, max_size=30),
    st.lists(ids, max_size=10),
    st.integers(min_value=0, max_value=30),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_placement_properties(listed: list[str], new: list[str], k: int, share: float) -> None:
    """At most k items, each once, scores never rising, every organic item kept in order,
    the new ones no more than their slots."""
    scored = organic(*listed)
    placed = place_new(scored, [Scored(n, 0.0, "new") for n in dict.fromkeys(new)], k, share)
    placed_ids = [s.item_id for s in placed]
    assert len(placed) <= k
    assert len(set(placed_ids)) == len(placed_ids)
    assert all(a.score >= b.score for a, b in zip(placed, placed[1:], strict=False))
    kept = [s.item_id for s in placed if s.reason != "new"]
    moved = {s.item_id for s in placed if s.reason == "new"}
    assert kept == [s.item_id for s in scored if s.item_id not in moved][: len(kept)]
    assert len(placed) - len(kept) <= new_slot_count(k, share, len(set(new)))


@given(
    st.lists(
        st.builds(
            NewProduct,
            ids,
            st.one_of(st.none(), st.sampled_from(["tea", "snacks"])),
            st.floats(min_value=0, max_value=1e9),
            buyers=st.integers(min_value=0, max_value=5),
            bought_with=st.integers(min_value=0, max_value=3),
        ),
        max_size=20,
    ),
    st.dictionaries(st.sampled_from(["tea", "snacks", "x"]), st.integers(0, 5)),
    st.sets(ids),
    st.integers(min_value=0, max_value=10),
)
def test_choices_stay_in_bounds(
    candidates: list[NewProduct], weights: dict[str, int], excluded: set[str], count: int
) -> None:
    for chosen in (
        new_for_customer(candidates, weights, excluded, count),
        new_like("a", "tea", {}, candidates, excluded, count),
    ):
        chosen_ids = [s.item_id for s in chosen]
        assert len(chosen) <= count
        assert len(set(chosen_ids)) == len(chosen_ids)
        assert not set(chosen_ids) & excluded
    for s in new_for_customer(candidates, weights, excluded, count):
        assert s.reason.removeprefix("new in ") in {c for c, w in weights.items() if w > 0}
