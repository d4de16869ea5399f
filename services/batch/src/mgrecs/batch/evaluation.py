"""Which user-personalization recipe the next model uses: the candidates named in the
settings, compared on the most recent purchases (see `mgrecs.engine.selection`)."""

from collections.abc import Mapping

from mgrecs.common.settings import Settings
from mgrecs.engine.dataset import Lines
from mgrecs.engine.selection import Selection, select_recipe


def candidates(settings: Settings) -> list[str]:
    """`settings.train_recipes` as a list of recipe names."""
    return [name.strip() for name in settings.train_recipes.split(",") if name.strip()]


def choose_recipe(
    lines: Lines, settings: Settings, margins: Mapping[str, float] | None = None
) -> Selection:
    """The candidate with the best validation NDCG@10 (or a blend, or popularity: see
    `select_recipe`), or the default recipe when the data are too few to hold out a
    validation period. Validated as the model will serve: re-bought products count when
    purchased products are not excluded. `margins` (per product, price - cost): the chosen
    recipe's margin curve is measured too, for the dashboard."""
    return select_recipe(
        lines,
        candidates(settings),
        settings.train_budget_seconds,
        repeat=not settings.exclude_purchased,
        margins=margins,
    )
