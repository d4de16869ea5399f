"""The answer of `GET /v1/reports/impact`: what recommendations earned (docs/concepts.md,
Impact)."""

from datetime import datetime

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import with_examples
from mgrecs.store import impact_report as report


class Measures(BaseModel):
    revenue: float = Field(description="price x quantity of the lines")
    orders: int = Field(description="distinct orders with such a line")
    items: int = Field(description="units (sum of quantities)")
    customers: int = Field(description="distinct customers who ordered such a line")

    @classmethod
    def of(cls, measures: report.Measures) -> "Measures":
        return cls(
            revenue=round(measures.revenue, 2),
            orders=measures.orders,
            items=measures.items,
            customers=measures.customers,
        )


class Estimate(BaseModel):
    """A value with its 95 % confidence interval (normal approximation) over `n` units."""

    value: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, estimate: report.Estimate) -> "Estimate":
        return cls(
            value=round(estimate.value, 6),
            low=round(estimate.low, 6),
            high=round(estimate.high, 6),
            n=estimate.n,
        )

    @classmethod
    def maybe(cls, estimate: report.Estimate | None) -> "Estimate | None":
        return None if estimate is None else cls.of(estimate)


class ImpactGroup(BaseModel):
    key: dict[str, str | None] = Field(
        description="the group's value of each group_by dimension; lines nobody was served "
        "have model_version, source and arm '(not served)'"
    )
    attributed: Measures = Field(description="recommendation-influenced lines")
    baseline: Measures = Field(description="lines of products the customer was not served")
    attributed_share: float | None = Field(description="attributed / all revenue; null: none")


class Uplift(BaseModel):
    shown_rate: float = Field(description="share of the products shown that were bought")
    other_rate: float = Field(description="share of the other products that were bought")
    difference: Estimate = Field(description="shown_rate - other_rate, over served customers")


class ArmComparison(BaseModel):
    experiment_id: str
    arm: str
    customers: int = Field(description="customers served in this arm")
    revenue_per_customer: Estimate | None
    versus_holdout: Estimate | None = Field(
        description="revenue per customer minus the holdout arm's; null without a holdout"
    )


class ImpactReport(BaseModel):
    model_config = with_examples(
        {
            "start": "2026-11-30T00:00:00Z",
            "end": "2026-12-07T00:00:00Z",
            "window_days": 7.0,
            "group_by": ["model_version"],
            "groups": [
                {
                    "key": {"model_version": "v20261130-0300"},
                    "attributed": {"revenue": 1250.5, "orders": 80, "items": 120, "customers": 70},
                    "baseline": {"revenue": 0.0, "orders": 0, "items": 0, "customers": 0},
                    "attributed_share": 1.0,
                }
            ],
            "total": {
                "key": {},
                "attributed": {"revenue": 1250.5, "orders": 80, "items": 120, "customers": 70},
                "baseline": {"revenue": 9800.0, "orders": 610, "items": 990, "customers": 400},
                "attributed_share": 0.1132,
            },
            "uplift": {
                "shown_rate": 0.031,
                "other_rate": 0.012,
                "difference": {"value": 0.019, "low": 0.015, "high": 0.023, "n": 812},
            },
            "arms": [],
        }
    )

    start: datetime
    end: datetime
    window_days: float
    group_by: list[str]
    groups: list[ImpactGroup]
    total: ImpactGroup
    uplift: Uplift | None = Field(description="null: nobody was served in the period")
    arms: list[ArmComparison]

    @classmethod
    def of(cls, found: report.ImpactReport) -> "ImpactReport":
        def group(g: report.Group) -> ImpactGroup:
            share = g.attributed_share
            return ImpactGroup(
                key=g.key,
                attributed=Measures.of(g.attributed),
                baseline=Measures.of(g.baseline),
                attributed_share=None if share is None else round(share, 6),
            )

        uplift = found.uplift
        return cls(
            start=found.start,
            end=found.end,
            window_days=found.window_days,
            group_by=found.group_by,
            groups=[group(g) for g in found.groups],
            total=group(found.total),
            uplift=None
            if uplift is None
            else Uplift(
                shown_rate=round(uplift.shown_rate, 6),
                other_rate=round(uplift.other_rate, 6),
                difference=Estimate.of(uplift.difference),
            ),
            arms=[
                ArmComparison(
                    experiment_id=a.experiment_id,
                    arm=a.arm,
                    customers=a.customers,
                    revenue_per_customer=Estimate.maybe(a.revenue_per_customer),
                    versus_holdout=Estimate.maybe(a.versus_holdout),
                )
                for a in found.arms
            ],
        )
