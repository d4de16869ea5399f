"""Similar items from the catalogue (`mgrecs.engine.content.catalogue_like`): pure, so
checked case by case and, for any input, by the properties the served list relies on."""

from hypothesis import given
from hypothesis import strategies as st

from mgrecs.engine.bands import CONTENT_FLOOR, HIT_FLOOR
from mgrecs.engine.content import CatalogueCandidate, catalogue_like, shared_attributes

ASKED = {"brand": "Leaf", "size": "100g"}


def test_co_purchases_then_shared_attributes_then_most_sold() -> None:
    candidates = [
        CatalogueCandidate("quiet", "tea"),
        CatalogueCandidate("popular", "tea", {"brand": "Other"}, sold=5),
        CatalogueCandidate("brand", "tea", {"brand": "Leaf"}),
        CatalogueCandidate("both", "tea", {"size": "100g", "brand": "Leaf"}),
        CatalogueCandidate("snack", "snacks", ASKED, sold=99),
        CatalogueCandidate("bought", "snacks", {}, bought_with=1),
        CatalogueCandidate("p", "tea", ASKED, sold=99),
    ]
    chosen = catalogue_like("p", "tea", ASKED, candidates, 10)
    assert [(s.item_id, s.reason) for s in chosen] == [
        ("bought", "bought together with p"),
        ("both", "same brand, size as p"),
        ("brand", "same brand as p"),
        ("popular", "same category as p"),
        ("quiet", "same category as p"),
    ]
    assert chosen[0].score == HIT_FLOOR


def test_without_a_category_only_co_purchases() -> None:
    candidates = [CatalogueCandidate("a", None), CatalogueCandidate("b", None, bought_with=2)]
    assert [s.item_id for s in catalogue_like("p", None, {}, candidates, 5)] == ["b"]
    assert catalogue_like("p", "tea", {}, candidates, 0) == []


def test_shared_attributes_need_the_same_value() -> None:
    assert shared_attributes({"a": 1, "b": [1], "c": "x"}, {"a": 1, "b": [1], "c": "y"}) == [
        "a",
        "b",
    ]


attributes = st.dictionaries(
    st.sampled_from(["brand", "size", "colour"]), st.sampled_from(["x", "y", 1, None]), max_size=3
)
candidate = st.builds(
    CatalogueCandidate,
    st.sampled_from([f"p{n}" for n in range(12)]),
    st.sampled_from([None, "tea", "snacks"]),
    attributes,
    sold=st.integers(0, 5),
    bought_with=st.integers(0, 2),
)


@given(
    st.sampled_from(["p0", "p1", "other"]),
    st.sampled_from([None, "tea", "snacks"]),
    attributes,
    st.lists(candidate, max_size=20),
    st.integers(-1, 15),
    st.randoms(use_true_random=False),
)
def test_properties_of_any_catalogue(
    product_id: str,
    category: str | None,
    asked: dict[str, object],
    candidates: list[CatalogueCandidate],
    count: int,
    random: object,
) -> None:
    chosen = catalogue_like(product_id, category, asked, candidates, count)
    ids = [s.item_id for s in chosen]
    last = {c.product_id: c for c in candidates}
    eligible = {
        p
        for p, c in last.items()
        if p != product_id and (c.bought_with > 0 or (category and c.category == category))
    }
    # Never itself, once each, only eligible ones, as many as asked and available.
    assert len(ids) == len(set(ids)) == min(max(count, 0), len(eligible))
    assert set(ids) <= eligible
    # Scores fall down the list, within the content band.
    scores = [s.score for s in chosen]
    assert scores == sorted(scores, reverse=True)
    assert all(CONTENT_FLOOR < s <= HIT_FLOOR for s in scores)
    # Co-purchases first; then more shared attributes never after fewer.
    keys = [(-last[p].bought_with, -len(shared_attributes(asked, last[p].attributes))) for p in ids]
    assert keys == sorted(keys)
    # A dropped eligible product ranks no better than the last one listed.
    if ids:
        worst = (
            -last[ids[-1]].bought_with,
            -len(shared_attributes(asked, last[ids[-1]].attributes)),
            -last[ids[-1]].sold,
            ids[-1],
        )
        for p in eligible - set(ids):
            c = last[p]
            assert (
                -c.bought_with,
                -len(shared_attributes(asked, c.attributes)),
                -c.sold,
                p,
            ) > worst
    # The order of the candidates does not matter (once each).
    unique = list(last.values())
    shuffled = unique[:]
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert catalogue_like(product_id, category, asked, shuffled, count) == catalogue_like(
        product_id, category, asked, unique, count
    )
