"""A visitor's list (`mgrecs.engine.visitors`): popularity with trending products at their
share, case by case and for any counts."""

from hypothesis import given
from hypothesis import strategies as st

from mgrecs.engine.visitors import ProductActivity, visitor_list


def test_trending_products_take_their_share_of_the_popular_list() -> None:
    activity = [
        ProductActivity("a", 10, 1, 30),
        ProductActivity("b", 8, 0, 30),
        ProductActivity("c", 6, 2, 20),
        ProductActivity("t", 3, 3, 0),  # three buyers this week, none before: rising
    ]
    listed = visitor_list(activity, True, 3, 0.3, "north")
    assert [(s.item_id, s.reason) for s in listed] == [
        ("a", "popular in north"),
        ("b", "popular in north"),
        ("t", "trending in north"),
    ]
    assert [s.score for s in listed] == [1.0, 0.8, 0.6]


def test_nothing_rises_without_a_past_or_a_share() -> None:
    activity = [ProductActivity("a", 10, 1, 0), ProductActivity("t", 3, 3, 0)]
    assert [s.item_id for s in visitor_list(activity, False, 1, 0.5, None)] == ["a"]
    assert [s.item_id for s in visitor_list(activity, True, 1, 0.0, None)] == ["a"]
    assert [s.reason for s in visitor_list(activity, True, 1, 1.0, None)] == ["trending"]
    assert visitor_list(activity, True, 0, 0.3, None) == []


counts = st.integers(min_value=0, max_value=20)


@given(
    st.lists(
        st.builds(ProductActivity, st.sampled_from("abcdefgh"), counts, counts, counts),
        max_size=20,
    ),
    st.booleans(),
    st.integers(min_value=0, max_value=12),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_any_counts_give_a_sorted_list_of_distinct_products(
    activity: list[ProductActivity], has_past: bool, k: int, share: float
) -> None:
    listed = visitor_list(activity, has_past, k, share, "north")
    ids = [s.item_id for s in listed]
    assert len(ids) <= k and len(set(ids)) == len(ids)
    assert all(0.0 <= s.score <= 1.0 for s in listed)
    assert all(a.score >= b.score for a, b in zip(listed, listed[1:], strict=False))
    assert {s.reason for s in listed} <= {"popular in north", "trending in north"}
