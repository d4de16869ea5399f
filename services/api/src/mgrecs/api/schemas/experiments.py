"""The answers of `routes.experiments`, and the experiment arm every personalised answer
carries (`ExperimentTag`)."""

from typing import Any

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import with_examples
from mgrecs.common.experiments import Experiment, Serves


class ExperimentTag(BaseModel):
    """The experiment arm a customer is in: echo both in feedback (`experiment_id`, `arm`)."""

    experiment_id: str
    arm: str


class Estimate(BaseModel):
    """A measured rate and its 95 % confidence interval."""

    value: float
    low: float
    high: float


class SampleSize(BaseModel):
    """How many observations an arm has, how many it needs to detect the minimum effect
    (`mde`) at the report's `alpha` and `power`, and how many more."""

    observed: int
    required: int | None = Field(
        description="per arm, from the baseline arm's figure; null while it cannot be "
        "estimated (the baseline has no clicks, purchases or revenue yet)"
    )
    still_needed: int | None = Field(description="required − observed, at least 0")


class ArmSampleSizes(BaseModel):
    """Per measure (null where it does not apply: with a holdout served nothing, which has
    no feedback): CTR and conversion count impressions, revenue per customer customers."""

    ctr: SampleSize | None = None
    conversion: SampleSize | None = None
    revenue_per_customer: SampleSize | None = None


class Difference(BaseModel):
    """An arm's figure minus the baseline arm's, with its confidence interval (at 1 −
    `alpha`) and two-sided p-value."""

    value: float
    low: float
    high: float
    p_value: float
    significant: bool = Field(description="p_value < alpha (the interval then excludes 0)")


class Comparison(BaseModel):
    """One arm against the baseline (null: not enough data in one of the two)."""

    arm: str
    baseline: str
    ctr: Difference | None = Field(description="two-proportion z-test on clicks / impressions")
    conversion: Difference | None = Field(
        description="two-proportion z-test on purchases / impressions"
    )
    revenue_per_customer: Difference | None = Field(
        description="percentile bootstrap (2,000 seeded resamples of customers)"
    )


class ArmReport(BaseModel):
    arm: str
    model_version: str | None = Field(description="null for a holdout arm")
    share: float = Field(description="configured fraction of the customers")
    serves: Serves = Field(
        default="model", description="model, or a holdout's popularity or nothing"
    )
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
    revenue_per_customer: Estimate | None = Field(
        default=None,
        description="revenue / customers with feedback (normal approximation); null: none",
    )
    served_from: dict[str, int] = Field(
        default_factory=dict,
        description="impressions by the source that served them (as the feedback said)",
    )
    sample_size: ArmSampleSizes = Field(default_factory=ArmSampleSizes)


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
                    "revenue_per_customer": {"value": 2.19, "low": 1.71, "high": 2.67},
                    "served_from": {"realtime": 8950, "popular": 50},
                    "sample_size": {
                        "ctr": {"observed": 9000, "required": 6700, "still_needed": 0},
                        "conversion": {"observed": 9000, "required": 16320, "still_needed": 7320},
                        "revenue_per_customer": {
                            "observed": 812,
                            "required": 5210,
                            "still_needed": 4398,
                        },
                    },
                }
            ],
            "baseline": "control",
            "comparisons": [
                {
                    "arm": "treatment",
                    "baseline": "control",
                    "ctr": {
                        "value": 0.009,
                        "low": 0.0025,
                        "high": 0.0155,
                        "p_value": 0.0068,
                        "significant": True,
                    },
                    "conversion": {
                        "value": 0.001,
                        "low": -0.0019,
                        "high": 0.0039,
                        "p_value": 0.4953,
                        "significant": False,
                    },
                    "revenue_per_customer": {
                        "value": 0.31,
                        "low": -0.35,
                        "high": 0.98,
                        "p_value": 0.362,
                        "significant": False,
                    },
                }
            ],
            "mde": 0.1,
            "alpha": 0.05,
            "power": 0.8,
            "warning": "sample too small, differences are not conclusive yet: control "
            "conversion: 7320 more impressions; …",
            "served_alike": True,
            "serving_warning": None,
        }
    )

    experiment_id: str
    arms: list[ArmReport]
    baseline: str | None = Field(
        default=None, description="the arm every other is compared with: the first configured"
    )
    comparisons: list[Comparison] = Field(default_factory=list)
    mde: float = Field(default=0.1, description="minimum detectable effect, a relative lift")
    alpha: float = Field(default=0.05, description="significance level (two-sided)")
    power: float = Field(default=0.8, description="chance to detect an effect of `mde`")
    warning: str | None = Field(
        default=None,
        description="while an arm has fewer observations than it needs: which and how many "
        "more (differences are not to be trusted yet); null once all have enough",
    )
    served_alike: bool = Field(
        default=True,
        description="every model arm's impressions mostly came from the same source "
        "(holdout arms aside): the comparison is not confounded by the serving",
    )
    serving_warning: str | None = Field(
        default=None, description="when not served alike: each model arm's main source"
    )


class ArmSummary(BaseModel):
    name: str
    model_version: str | None
    share: float
    serves: Serves = "model"


class ExperimentSummary(BaseModel):
    """A configured experiment and its split (without the engine's campaign ARNs)."""

    id: str
    arms: list[ArmSummary]

    @classmethod
    def of(cls, experiment: Experiment) -> "ExperimentSummary":
        return cls(
            id=experiment.id,
            arms=[
                ArmSummary(
                    name=a.name, model_version=a.model_version, share=a.share, serves=a.serves
                )
                for a in experiment.arms
            ],
        )
