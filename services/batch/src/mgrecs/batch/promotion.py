"""The promotion gate: a newly trained version serves only if its NDCG@10 beats popularity's
and the active version's, both measured on the same validation period (the latest purchases),
the active one's by `MGRECS_PROMOTION_MARGIN`.

Why the same period: two versions validated on different periods have figures that cannot
be compared (a 0.9 on last month's purchases says nothing against a 0.3 on this month's), so
the active version's recipe with its parameters is measured again on the new version's
period (`mgrecs.batch.incumbent`). When that cannot be done, its stored figure stands in, and
the decision says so. The active recipe with its own parameters (a refresh, or a retrain that
chose the same) is the same model on newer data: the margin is waived. AWS mode compares
Personalize's solution metrics (`decide_personalize`). An operator can still promote or roll
back by hand.
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

Source = Literal["same period", "stored", "same model"]
"""Where the active version's figure comes from: measured again on the new version's
validation period; its own stored validation figure (another period); or the new version is
the active recipe with its parameters (the same figure)."""

TOLERANCE = 1e-9
"""Figures are rounded to 6 decimals: a candidate exactly at the bar passes."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


@dataclass(frozen=True)
class Incumbent:
    """The active version and its NDCG@10 to beat."""

    version: str
    ndcg: float | None
    """None: the active version was never validated."""
    source: Source

    def record(self, margin: float) -> dict[str, Any]:
        """JSON for the new version's `metrics["gate"]`."""
        return {**asdict(self), "margin": margin}


def _ndcg(validation: dict[str, Any], who: str) -> float:
    return float(validation[who]["ndcg@10"])


def _percent(share: float) -> str:
    return f"{share * 100:g} %"


def decide(metrics: dict[str, Any], incumbent: Incumbent | None, margin: float = 0.0) -> Decision:
    """Promote or keep as candidate, with the reason shown in the model status.

    `incumbent` is the active version with its figure (None when nothing serves yet: then
    only popularity is to beat). Without a validation period (too little data) there is no
    evidence either way, so the fresher model wins unless the active one was validated.
    """
    validation = metrics.get("validation")
    if validation is None:
        fallback = metrics.get("selection", {}).get("fallback") or "no validation period"
        if incumbent is not None and incumbent.ndcg is not None:
            return Decision(False, f"not validated ({fallback}); the validated active one stays")
        return Decision(True, f"not validated ({fallback}); the freshest model serves")
    chosen, baseline = _ndcg(validation, "chosen"), _ndcg(validation, "popularity")
    figures = f"NDCG@10 {chosen:.4f} vs popularity {baseline:.4f}"
    if incumbent is None:
        if chosen > baseline:
            return Decision(True, f"beats popularity: {figures}")
        if metrics.get("recipe") == "popularity":
            return Decision(True, f"first model: popularity, no recipe beat it: {figures}")
        return Decision(True, f"first model, although it does not beat popularity: {figures}")
    if chosen <= baseline:
        return Decision(False, f"does not beat popularity: {figures}; the active version stays")
    if incumbent.ndcg is None:
        return Decision(
            True, f"beats popularity: {figures}; the active {incumbent.version} was not validated"
        )
    if incumbent.source == "same model":
        return Decision(
            True, f"beats popularity: {figures}; the active recipe and parameters on newer data"
        )
    bar = incumbent.ndcg * (1 + margin)
    versus = (
        f"active {incumbent.version} {incumbent.ndcg:.4f} ({incumbent.source}),"
        f" needed {bar:.4f} (margin {_percent(margin)})"
    )
    if chosen + TOLERANCE >= bar:
        return Decision(True, f"beats the active version and popularity: {figures}; {versus}")
    return Decision(
        False,
        f"does not beat the active version by the margin: {figures}; {versus};"
        " the active version stays",
    )


SOLUTION_METRIC = "normalized_discounted_cumulative_gain_at_10"
"""Personalize's NDCG@10 among a solution version's metrics (GetSolutionMetrics)."""


def solution_ndcg(metrics: dict[str, Any] | None) -> float | None:
    """A version's Personalize NDCG@10 (`metrics["solution_metrics"]`), None when absent."""
    value = (metrics or {}).get("solution_metrics", {}).get(SOLUTION_METRIC)
    return None if value is None else float(value)


def decide_personalize(
    candidate: float | None,
    active: tuple[str, float | None] | None,
    margin: float,
    *,
    refresh: bool,
) -> Decision:
    """AWS mode's gate on Personalize's NDCG@10: a retrain's new solution version (FULL)
    serves when it reaches the active version's (`(version, figure)`, None when nothing
    serves) times 1 + `margin`. A refresh (UPDATE) is the active solution on newer data: it
    serves, as a self-hosted refresh of the active recipe does (Personalize has no
    popularity figure to hold it to). Personalize measures each version on a holdout of the
    data it was trained on: the nearest to "the same period" its metrics allow."""
    shown = "none" if candidate is None else f"{candidate:.4f}"
    if active is None:
        return Decision(True, f"first model: Personalize NDCG@10 {shown}")
    version, figure = active
    if refresh:
        was = "none" if figure is None else f"{figure:.4f}"
        return Decision(
            True, f"the active solution on newer data: NDCG@10 {shown}, active {version} {was}"
        )
    if figure is None:
        return Decision(True, f"NDCG@10 {shown}; the active {version} has no Personalize figure")
    if candidate is None:
        return Decision(
            False,
            f"no NDCG@10 from Personalize; the measured active {version} ({figure:.4f}) stays",
        )
    bar = figure * (1 + margin)
    figures = (
        f"Personalize NDCG@10 {candidate:.4f} vs active {version} {figure:.4f},"
        f" needed {bar:.4f} (margin {_percent(margin)})"
    )
    if candidate + TOLERANCE >= bar:
        return Decision(True, f"beats the active version: {figures}")
    return Decision(False, f"does not beat the active version by the margin: {figures}; it stays")
