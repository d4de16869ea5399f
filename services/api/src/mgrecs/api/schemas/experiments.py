"""The answers of `routes.experiments`, and the experiment arm every personalised answer
carries (`ExperimentTag`)."""

from typing import Any

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import with_examples
from mgrecs.common.experiments import Experiment


class ExperimentTag(BaseModel):
    """The experiment arm a customer is in: echo both in feedback (`experiment_id`, `arm`)."""

    experiment_id: str
    arm: str


class Estimate(BaseModel):
    """A measured rate and its 95 % confidence interval."""

    value: float
    low: float
    high: float


class ArmReport(BaseModel):
    arm: str
    model_version: str
    share: float = Field(description="configured fraction of the customers")
    offline_metrics: dict[str, Any] | None = Field(
        description="the model version's offline evaluation (model_versions), null if unknown"
    )
    offline_figures: dict[str, float] = Field(
        default_factory=dict,
        description="its headline figures (precision@10, recall@10, ndcg@10, mrr, coverage: "
        "those it has), as GET /v1/status shows them",
    )
    customers: int = Field(description="distinct customers with feedback in this arm")
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float
    ctr: Estimate | None = Field(description="clicks / impressions (Wilson); null: none")
    conversion: Estimate | None = Field(
        description="purchases / impressions (Wilson); null without impressions"
    )
    revenue_per_impression: Estimate | None = Field(
        description="revenue / impressions (normal approximation); null without impressions"
    )


class ExperimentReport(BaseModel):
    model_config = with_examples(
        {
            "experiment_id": "ease-vs-als",
            "arms": [
                {
                    "arm": "control",
                    "model_version": "v20261119-0300",
                    "share": 0.5,
                    "offline_metrics": {"ndcg@10": 0.21},
                    "offline_figures": {"ndcg@10": 0.21},
                    "customers": 812,
                    "impressions": 9000,
                    "clicks": 450,
                    "add_to_carts": 120,
                    "purchases": 90,
                    "revenue": 1780.5,
                    "ctr": {"value": 0.05, "low": 0.0457, "high": 0.0547},
                    "conversion": {"value": 0.01, "low": 0.0081, "high": 0.0123},
                    "revenue_per_impression": {
                        "value": 0.1978,
                        "low": 0.157,
                        "high": 0.2386,
                    },
                }
            ],
        }
    )

    experiment_id: str
    arms: list[ArmReport]


class ArmSummary(BaseModel):
    name: str
    model_version: str
    share: float


class ExperimentSummary(BaseModel):
    """A configured experiment and its split (without the engine's campaign ARNs)."""

    id: str
    arms: list[ArmSummary]

    @classmethod
    def of(cls, experiment: Experiment) -> "ExperimentSummary":
        return cls(
            id=experiment.id,
            arms=[
                ArmSummary(name=a.name, model_version=a.model_version, share=a.share)
                for a in experiment.arms
            ],
        )
