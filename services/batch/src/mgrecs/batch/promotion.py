"""The promotion gate: a newly trained version serves only if it beats the popularity
baseline on NDCG@10, measured on the same validation period (the latest purchases).

Why popularity and not the active version's recorded figure: the two versions were validated
on different periods, so their NDCGs are not comparable; the baseline measured on the new
version's own period is. An operator can still promote or roll back by hand.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def _ndcg(validation: dict[str, Any], who: str) -> float:
    return float(validation[who]["ndcg@10"])


def decide(metrics: dict[str, Any], active: dict[str, Any] | None) -> Decision:
    """Promote or keep as candidate, with the reason shown in the model status.

    `active` is the active version's metrics (None when nothing serves yet). Without a
    validation period (too little data) there is no evidence either way, so the fresher model
    wins unless the active one was validated.
    """
    validation = metrics.get("validation")
    if validation is None:
        fallback = metrics.get("selection", {}).get("fallback") or "no validation period"
        if active is not None and active.get("validation") is not None:
            return Decision(False, f"not validated ({fallback}); the validated active one stays")
        return Decision(True, f"not validated ({fallback}); the freshest model serves")
    chosen, baseline = _ndcg(validation, "chosen"), _ndcg(validation, "popularity")
    figures = f"NDCG@10 {chosen:.4f} vs popularity {baseline:.4f}"
    if chosen > baseline:
        return Decision(True, f"beats popularity: {figures}")
    if active is None and metrics.get("recipe") == "popularity":
        return Decision(True, f"first model: popularity, no recipe beat it: {figures}")
    if active is None:
        return Decision(True, f"first model, although it does not beat popularity: {figures}")
    return Decision(False, f"does not beat popularity: {figures}; the active version stays")
