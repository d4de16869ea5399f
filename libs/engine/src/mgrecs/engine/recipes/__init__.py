"""User-personalization recipes, one module each, all behind the `Recipe` protocol.

`RECIPES` names them, `make_recipe` builds one from its name and hyper-parameters, and
`GRIDS` holds a small search grid per recipe for tuning on a validation slice (the first
point of each grid is the recipe's default). The collaborative recipes take an optional
`half_life_days` (recency decay of the training entries, `support.recency_weighted`): on
data whose tastes drift it wins on validation, on steady data validation leaves it off.
A `blend` has no grid of its own: its weights are searched on validation by
`mgrecs.engine.evaluation.blending.tune_blend` over already tuned components.
"""

from typing import Any

from mgrecs.engine.recipes.als import ALSRecipe
from mgrecs.engine.recipes.base import Recipe, SparseScoring, TrainingData
from mgrecs.engine.recipes.blend import BlendRecipe
from mgrecs.engine.recipes.buy_again import BuyAgainRecipe
from mgrecs.engine.recipes.buy_again_count import BuyAgainCountRecipe
from mgrecs.engine.recipes.ease import EASERecipe
from mgrecs.engine.recipes.itemknn import ItemKNNRecipe
from mgrecs.engine.recipes.popularity import PopularityCountRecipe, PopularityRecipe
from mgrecs.engine.recipes.regional import RegionalPopularityRecipe
from mgrecs.engine.recipes.rp3beta import RP3BetaRecipe
from mgrecs.engine.recipes.trending import TrendingRecipe

__all__ = [
    "GRIDS",
    "RECIPES",
    "ALSRecipe",
    "BuyAgainCountRecipe",
    "BlendRecipe",
    "BuyAgainRecipe",
    "EASERecipe",
    "ItemKNNRecipe",
    "PopularityCountRecipe",
    "PopularityRecipe",
    "RP3BetaRecipe",
    "Recipe",
    "RegionalPopularityRecipe",
    "SparseScoring",
    "TrainingData",
    "TrendingRecipe",
    "make_recipe",
]

RECIPES: dict[str, type[Recipe]] = {
    recipe.name: recipe
    for recipe in (
        PopularityCountRecipe,
        PopularityRecipe,
        TrendingRecipe,
        RegionalPopularityRecipe,
        EASERecipe,
        ItemKNNRecipe,
        RP3BetaRecipe,
        ALSRecipe,
        BuyAgainRecipe,
        BuyAgainCountRecipe,
        BlendRecipe,
    )
}

GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity-count": [{}],
    "popularity": [{}, {"half_life_days": 30.0}, {"half_life_days": 90.0}],
    "trending": [{}, {"window_days": 14.0, "baseline_days": 56.0}, {"smoothing": 10.0}],
    "regional-popularity": [
        {},
        {"smoothing": 10.0},
        {"smoothing": 1000.0},
        {"half_life_days": 30.0},
    ],
    "ease": [
        {},
        {"l2": 50.0},
        {"l2": 500.0},
        {"l2": 2000.0},
        {"l2": 50.0, "half_life_days": 30.0},
        {"l2": 50.0, "half_life_days": 14.0},
    ],
    "itemknn": [
        {},
        {"shrink": 10.0},
        {"shrink": 200.0},
        {"neighbours": 200},
        {"neighbours": 10, "shrink": 10.0},
        {"neighbours": 10, "shrink": 0.0},
        {"neighbours": 10, "shrink": 0.0, "half_life_days": 90.0},
        {"half_life_days": 30.0},
        {"half_life_days": 14.0},
    ],
    "rp3beta": [
        {},
        {"beta": 0.3},
        {"beta": 0.0},
        {"half_life_days": 90.0},
        {"beta": 0.3, "half_life_days": 30.0},
        {"beta": 0.3, "half_life_days": 14.0},
        {"history_idf": 0.25},
        {"history_idf": 0.5},
        {"history_idf": 0.25, "neighbours": 50, "profile_weight": 1.0, "profile_neighbours": 300},
    ],
    "als": [
        {},
        {"regularization": 10.0},
        {"regularization": 30.0, "alpha": 10.0},
        {"factors": 32},
        {"alpha": 10.0},
        {"factors": 64, "regularization": 50.0, "alpha": 40.0, "half_life_days": 14.0},
        {"factors": 128, "regularization": 50.0, "alpha": 40.0, "half_life_days": 14.0},
    ],
    "buy-again": [
        {},
        {"half_life_days": 30.0},
        {"half_life_days": 14.0},
        {"half_life_days": None},
        {"repeat_weight": 0.0},
        {"repeat_weight": 1.0},
        {"due_weight": 0.5},
        {"completion_weight": 0.05},
        {"completion_weight": 0.1},
    ],
    "buy-again-count": [{}],
    "blend": [{}],
}


def make_recipe(name: str, **params: Any) -> Recipe:
    """A new, unfitted recipe; unknown names and parameters are clear errors."""
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None
    try:
        return recipe(**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for recipe {name!r}: {error}") from None
