"""Personalize filter expressions: parsing, binding filterValues, and the product masks they
give, on a small hand-built catalogue whose answers are known."""

from datetime import UTC, datetime, timedelta

import pytest

from mgrecs.common.settings import Settings
from mgrecs.engine.catalog import Catalog, build_catalog
from mgrecs.engine.filters import (
    CategoryIn,
    EventTypeIn,
    Expression,
    Filter,
    Parameter,
    PriceComparison,
    bind,
    parse_filter,
)
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.promotion import popularity_order, promoted_products
from mgrecs.engine.records import Interaction, ProductInfo, Scored
from mgrecs.engine.rules import Rules
from support.paths import REPO_ROOT

PRODUCTS = [
    ProductInfo("shoe1", "Runner", "shoes", 50.0),
    ProductInfo("shoe2", "Boot", "shoes", 120.0),
    ProductInfo("bag1", "Tote", "bags", 30.0),
    ProductInfo("bag2", "Backpack", "bags", 80.0),
    ProductInfo("hat", "Cap", "hats", 10.0),
    ProductInfo("odd", "Mystery box", None, None),  # no category, no price
    ProductInfo("wine", "Red", "Beer, wine & spirits", 12.5),
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog([], PRODUCTS)


def passing(catalog: Catalog, expression: str, values: dict[str, str] | None = None) -> set[str]:
    mask = bind(parse_filter(expression), values).mask(catalog)
    return {p for p, ok in zip(catalog.product_ids, mask.tolist(), strict=True) if ok}


ALL = {p.product_id for p in PRODUCTS}


def test_an_expression_parses_into_its_parts_ignoring_the_case_of_keywords() -> None:
    parsed = parse_filter(
        'include itemId where items.category in ($CATEGORY, "hats") and Items.PRICE < 99.5'
        ' | EXCLUDE ItemID WHERE INTERACTIONS.EVENT_TYPE IN ("purchase")'
        " | EXCLUDE ItemID WHERE Items.CATEGORY NOT IN ($KEEP) AND Items.PRICE >= $MIN"
    )
    assert parsed == Filter(
        (
            Expression(
                True,
                (
                    CategoryIn((Parameter("CATEGORY"), "hats")),
                    PriceComparison("<", 99.5),
                ),
            ),
            Expression(False, (EventTypeIn(("purchase",)),)),
            Expression(
                False,
                (
                    CategoryIn((Parameter("KEEP"),), negated=True),
                    PriceComparison(">=", Parameter("MIN")),
                ),
            ),
        )
    )
    assert parsed.parameters == ["CATEGORY", "KEEP", "MIN"]


def test_category_in_placeholder_values(catalog: Catalog) -> None:
    expression = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    assert passing(catalog, expression, {"CATEGORY": '"shoes","bags"'}) == {
        "shoe1",
        "shoe2",
        "bag1",
        "bag2",
    }
    assert passing(catalog, expression, {"CATEGORY": ' "hats" '}) == {"hat"}
    # A comma inside quotes belongs to the value; category values match exactly.
    assert passing(catalog, expression, {"CATEGORY": '"Beer, wine & spirits"'}) == {"wine"}
    assert passing(catalog, expression, {"CATEGORY": '"Shoes","no-such"'}) == set()
    assert passing(catalog, 'INCLUDE ItemID WHERE Items.CATEGORY IN ("bags")') == {"bag1", "bag2"}


def test_excluding_a_category_keeps_products_without_one(catalog: Catalog) -> None:
    assert passing(catalog, 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("shoes", "bags")') == {
        "hat",
        "odd",
        "wine",
    }
    # NOT IN: a product without a category is in no list, so it is NOT IN any.
    assert passing(catalog, 'INCLUDE ItemID WHERE Items.CATEGORY NOT IN ("shoes")') == ALL - {
        "shoe1",
        "shoe2",
    }


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("< 50", {"bag1", "hat", "wine"}),
        ("<= 50", {"shoe1", "bag1", "hat", "wine"}),
        ("> 50", {"shoe2", "bag2"}),
        (">= 50", {"shoe1", "shoe2", "bag2"}),
        ("= 12.5", {"wine"}),
        ("!= 50", {"shoe2", "bag1", "bag2", "hat", "wine"}),  # never the price-less one
    ],
)
def test_price_comparisons(catalog: Catalog, comparison: str, expected: set[str]) -> None:
    assert passing(catalog, f"INCLUDE ItemID WHERE Items.PRICE {comparison}") == expected


def test_price_range_from_placeholders_combined_with_and(catalog: Catalog) -> None:
    expression = "INCLUDE ItemID WHERE Items.PRICE >= $MIN AND Items.PRICE < $MAX"
    assert passing(catalog, expression, {"MIN": "30", "MAX": '"80"'}) == {"shoe1", "bag1"}
    assert passing(catalog, expression, {"MIN": "10.5", "MAX": "1000"}) == ALL - {"hat", "odd"}
    both = (
        'INCLUDE ItemID WHERE Items.CATEGORY IN ("shoes", "bags") AND Items.PRICE <= $MAX'
        ' | EXCLUDE ItemID WHERE Items.CATEGORY IN ("bags")'
    )
    assert passing(catalog, both, {"MAX": "60"}) == {"shoe1"}


def test_an_exclude_condition_without_its_value_is_left_out(catalog: Catalog) -> None:
    expression = "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) AND Items.PRICE > $MIN"
    assert passing(catalog, expression, {"CATEGORY": '"shoes"', "MIN": "100"}) == ALL - {"shoe2"}
    assert passing(catalog, expression, {"CATEGORY": '"shoes"'}) == ALL - {"shoe1", "shoe2"}
    assert passing(catalog, expression) == ALL
    with pytest.raises(ValueError, match=r"filterValues must give MIN \(used by an INCLUDE"):
        bind(parse_filter("INCLUDE ItemID WHERE Items.PRICE > $MIN"), {})


@pytest.mark.parametrize(
    ("expression", "values", "excludes"),
    [
        ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")', None, True),
        ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Purchase")', None, True),
        ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "*")', None, True),
        ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")', None, False),
        ("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($E)", {"E": '"purchase"'}, True),
        ("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($E)", None, False),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("hats")', None, False),
    ],
)
def test_which_filters_exclude_purchases(
    catalog: Catalog, expression: str, values: dict[str, str] | None, excludes: bool
) -> None:
    bound = bind(parse_filter(expression), values)
    assert bound.excludes_purchases is excludes
    if "Interactions" in expression:  # says nothing about the products themselves
        assert bound.mask(catalog).all()


def test_a_product_nothing_is_known_about(catalog: Catalog) -> None:
    def unknown(expression: str) -> bool:
        return bind(parse_filter(expression), {}).allows_unknown()

    assert unknown('EXCLUDE ItemID WHERE Items.CATEGORY IN ("shoes")')
    assert unknown('INCLUDE ItemID WHERE Items.CATEGORY NOT IN ("shoes")')
    assert not unknown('INCLUDE ItemID WHERE Items.CATEGORY IN ("shoes")')
    assert not unknown("INCLUDE ItemID WHERE Items.PRICE < 10")
    assert unknown('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')


def test_quoted_values_may_escape_quotes(catalog: Catalog) -> None:
    parsed = parse_filter(r'INCLUDE ItemID WHERE Items.CATEGORY IN ("say \"hi\"", $C)')
    assert parsed.expressions[0].conditions[0] == CategoryIn(('say "hi"', Parameter("C")))
    odd = build_catalog([], [ProductInfo("q", None, 'a "quoted" one', 1.0)])
    assert passing(
        odd, "INCLUDE ItemID WHERE Items.CATEGORY IN ($C)", {"C": r'"a \"quoted\" one"'}
    ) == {"q"}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "the filter expression is empty"),
        ("INCLUDE", "expected ItemID, but the expression ends"),
        ("SELECT ItemID WHERE Items.PRICE > 1", "expected INCLUDE or EXCLUDE, but found 'SELECT'"),
        (
            "INCLUDE ItemID Items.PRICE > 1",
            "expected WHERE, but found 'Items.PRICE' at position 16",
        ),
        ('INCLUDE ItemID WHERE Items.COLOR IN ("red")', "Items.COLOR is not supported"),
        ('INCLUDE ItemID WHERE Items.CATEGORY = "a"', "expected IN or NOT IN after Items.CATEGORY"),
        ('INCLUDE ItemID WHERE Items.PRICE IN ("1")', "expected =, !=, <, <=, > or >= after"),
        ("INCLUDE ItemID WHERE Items.PRICE > cheap", "expected a number or a $PARAMETER"),
        (
            "INCLUDE ItemID WHERE Items.CATEGORY IN (shoes)",
            'expected a quoted value such as "shoes"',
        ),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a"', "expected ')', but the expression ends"),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a)', "unterminated string at position 41"),
        ("INCLUDE ItemID WHERE Items.PRICE > 1 ;", "unexpected character ';' at position 38"),
        (
            'INCLUDE ItemID WHERE Items.CATEGORY IN ("a") OR Items.PRICE > 1',
            "OR is not supported (position 46)",
        ),
        (
            "INCLUDE ItemID WHERE Items.PRICE > 1 IF CurrentUser.AGE > 18",
            "IF conditions (CurrentUser) are not supported",
        ),
        (
            "INCLUDE ItemID WHERE Items.CATEGORY IN (CurrentItem.CATEGORY)",
            "CurrentItem.CATEGORY is not supported",
        ),
        ("INCLUDE UserID WHERE Users.AGE > 18", "only ItemID filters are supported, not UserID"),
        (
            'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")',
            "INCLUDE on Interactions is not supported",
        ),
        (
            'EXCLUDE ItemID WHERE Items.PRICE > 1 AND Interactions.EVENT_TYPE IN ("purchase")',
            "cannot mix Items and Interactions",
        ),
        ('INCLUDE ItemID WHERE Items.CATEGORY IN ("a") | ', "an expression is missing around '|'"),
        ("INCLUDE ItemID WHERE Items.PRICE > " + "1" * 2500, "longer than 2500 characters"),
    ],
)
def test_malformed_or_unsupported_expressions_say_what_is_wrong(
    expression: str, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        parse_filter(expression)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CATEGORY": "shoes"}, "filterValues[CATEGORY] must be double-quoted values"),
        ({"CATEGORY": '"shoes",'}, "filterValues[CATEGORY] ends with a comma"),
        ({"CATEGORY": '"shoes" "bags"'}, "filterValues[CATEGORY] must be double-quoted values"),
        ({"CATEGORY": ""}, "filterValues[CATEGORY] is empty"),
        ({"CATEGORY": '"a"', "MAX": "ten"}, "filterValues[MAX] must be one number"),
        ({"CATEGORY": '"a"', "MAX": "1,2"}, "filterValues[MAX] must be one number"),
        ({"CATEGORY": '"a"', "CATEGROY": '"b"'}, "filterValues has CATEGROY; the filter uses"),
        ({"$CATEGORY": '"a"'}, "keys are placeholder names without '$'"),
        ({"MAX": "10"}, "filterValues must give CATEGORY"),
    ],
)
def test_bad_filter_values_say_what_is_wrong(values: dict[str, str], message: str) -> None:
    parsed = parse_filter(
        "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
        " | EXCLUDE ItemID WHERE Items.PRICE > $MAX"
    )
    with pytest.raises(ValueError) as raised:
        bind(parsed, values)
    assert message in str(raised.value)


# -- the model takes a bound filter as its `where` rule ---------------------------------------

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> RecommenderModel:
    """shoe1+bag1 bought together by 4; hat by 6 (most popular); odd by 2; wine by 1."""
    lines = []
    for n in range(4):
        lines += [
            Interaction(f"sb{n}", p, 1, NOW - timedelta(days=1), None) for p in ("shoe1", "bag1")
        ]
    lines += [Interaction(f"h{n}", "hat", 1, NOW - timedelta(days=1), None) for n in range(6)]
    lines += [Interaction(f"o{n}", "odd", 1, NOW - timedelta(days=1), None) for n in range(2)]
    lines += [Interaction("w", "wine", 1, NOW - timedelta(days=1), None)]
    return RecommenderModel.fit(lines, products=PRODUCTS)


def item_ids(items: list[Scored]) -> list[str]:
    return [s.item_id for s in items]


def test_the_model_applies_a_filter_to_every_list(model: RecommenderModel) -> None:
    no_bags = bind(parse_filter('EXCLUDE ItemID WHERE Items.CATEGORY IN ("bags")'), None)
    assert item_ids(model.recommend(["shoe1"], None, 4)) == ["bag1", "hat", "odd", "wine"]
    # The price-less, category-less "odd" stays; never-bought shoe2 and bag2 are not popular.
    assert item_ids(model.recommend(["shoe1"], None, 4, rules=Rules(where=no_bags.mask))) == [
        "hat",
        "odd",
        "wine",
    ]
    shoes = bind(parse_filter("INCLUDE ItemID WHERE Items.CATEGORY IN ($C)"), {"C": '"shoes"'})
    assert item_ids(model.recommend(["bag1"], None, 4, rules=Rules(where=shoes.mask))) == ["shoe1"]
    # Same answer as the `categories` rule it stands for, in single and batch calls.
    for customer in model.customer_ids:
        history = model.history(customer)
        assert model.recommend(history, None, 5, rules=Rules(where=shoes.mask)) == model.recommend(
            history, None, 5, rules=Rules(categories={"shoes"})
        )
    assert model.recommend_all(5, rules=Rules(where=shoes.mask)) == model.recommend_all(
        5, rules=Rules(categories={"shoes"})
    )
    cheap = bind(parse_filter("INCLUDE ItemID WHERE Items.PRICE < $MAX"), {"MAX": "30"})
    assert item_ids(model.similar_items("shoe1", 3, rules=Rules(where=cheap.mask))) == [
        "hat",
        "wine",
    ]
    assert model.catalog.product_ids[: len(model.item_ids)] == model.item_ids


def test_the_shipped_filters_parse() -> None:
    """The default filters and those of deploy/example.env (the API's category filter)."""
    shipped = Settings(_env_file=REPO_ROOT / "deploy" / "example.env")
    default = Settings.model_fields["engine_filters"].default
    for expression in [*default.values(), *shipped.engine_filters.values()]:
        parse_filter(expression)
    assert set(default) <= set(shipped.engine_filters)
    assert shipped.category_filter_arn == shipped.filter_arn_prefix + "mgrecs-category"
    category = bind(parse_filter(default["mgrecs-category"]), {"CATEGORY": '"a"'})
    assert category.excludes_purchases


def test_promoted_products_pass_the_filter_most_popular_first(model: RecommenderModel) -> None:
    order = popularity_order(model, None)
    ids = [model.catalog.product_ids[j] for j in order.tolist()]
    assert ids[0] == "hat" and ids[-3:] == ["wine", "bag2", "shoe2"]  # never bought: last

    def promoted(expression: str, excluded: list[str], k: int) -> list[str]:
        mask = bind(parse_filter(expression), None).mask(model.catalog)
        return promoted_products(model, order, mask, excluded, k)

    shoes = 'INCLUDE ItemID WHERE Items.CATEGORY IN ("shoes")'
    assert promoted(shoes, [], 5) == ["shoe1", "shoe2"]
    assert promoted('INCLUDE ItemID WHERE Items.CATEGORY IN ("bags")', ["bag1"], 5) == ["bag2"]
    assert promoted("INCLUDE ItemID WHERE Items.PRICE < 100", ["hat"], 1) == [ids[1]]
