"""The active version's NDCG@10 on a new version's validation period, for the promotion gate
(`mgrecs.batch.promotion`).

The active version's recipe is fitted with its stored parameters on the same training part
and scored on the same held-out purchases as the new version (`measure_recipe`, seeded: as
the new version's own figure was). Its saved artifact is not scored: it was fitted on every
purchase up to its training, most of this validation period included, so it has seen the
answers (and, excluding purchased products, would not even recommend them). When the recipe
cannot be measured again (a recipe no longer in the catalogue, parameters it refuses, no
recipe recorded) its stored validation figure stands in, from another period, with a logged
warning and `source` "stored" in the decision.
"""

import json
from typing import Any

from mgrecs.batch.promotion import Incumbent
from mgrecs.common.logging import get_logger
from mgrecs.engine.dataset import Lines
from mgrecs.engine.selection import measure_recipe
from mgrecs.store.model_versions import ModelVersion

log = get_logger(__name__)


def _stored(metrics: dict[str, Any]) -> float | None:
    validation = metrics.get("validation")
    return None if not validation else float(validation["chosen"]["ndcg@10"])


def _same(a: Any, b: Any) -> bool:
    """Equal as stored (JSON: tuples are lists, keys strings)."""
    return bool(json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True))


def measure_incumbent(
    active: ModelVersion, lines: Lines, candidate: dict[str, Any], repeat: bool
) -> Incumbent:
    """`active`'s figure to beat for the new version with `candidate` metrics, trained on
    `lines` (CPU-bound: run it in a thread). `repeat` as the new version was validated."""
    stored = _stored(active.metrics)
    validation = candidate.get("validation")
    if validation is None:  # no period to measure on: the gate needs only "validated or not"
        return Incumbent(active.version, stored, "stored")
    recipe, params = active.metrics.get("recipe"), active.metrics.get("params")
    if recipe == candidate.get("recipe") and _same(params, candidate.get("params")):
        return Incumbent(active.version, float(validation["chosen"]["ndcg@10"]), "same model")
    try:
        if not isinstance(recipe, str) or not isinstance(params, dict):
            raise ValueError("no recipe and parameters recorded")
        measured = measure_recipe(lines, recipe, params, repeat=repeat)
        if measured.validation is None:
            raise ValueError(measured.fallback or "no validation period")
        return Incumbent(active.version, _stored(measured.to_metrics()), "same period")
    except Exception as error:  # whatever stops the old recipe, the gate still decides
        log.warning(
            "promotion_active_not_remeasured",
            version=active.version,
            recipe=recipe,
            error=f"{type(error).__name__}: {error}",
            stored_ndcg=stored,
        )
        return Incumbent(active.version, stored, "stored")
