"""The answers of `routes.regions`: a region's recommendations with match rates and
affinity, and the list of regions."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import CacheFreshness, with_examples

Affinity = Literal["High", "Medium", "Low"]


class RegionItem(BaseModel):
    """A product recommended to part of a region's customers (sampled, or all active)."""

    product_id: str
    product_name: str | None
    category: str | None
    match_rate: float = Field(description="% of the customers whose list contains it")
    match_rate_low: float = Field(description="lower end of its 95 % Wilson interval (%)")
    match_rate_high: float = Field(description="upper end of its 95 % Wilson interval (%)")
    affinity: Affinity = Field(description="High >= 80 %, Medium 40-79.9 %, Low < 40 %")
    mean_score: float = Field(description="mean score among the customers who got it")
    users: int = Field(description="customers whose list contains it")
    reason: str | None = Field(
        default=None,
        description="why a business rule put it there: promoted, pinned (null: counted)",
    )


RegionMode = Literal["sample", "exact"]


RegionSource = Literal["cache", "aggregates", "popular"]


class RegionRecommendations(CacheFreshness):
    model_config = with_examples(
        {
            "region": "north",
            "mode": "sample",
            "source": "cache",
            "window_start": "2026-11-26T06:00:00+00:00",
            "window_end": "2026-11-26T12:00:00+00:00",
            "generation": None,
            "computed_at": None,
            "population": 1874,
            "sample_size": 50,
            "items": [
                {
                    "product_id": "P0007",
                    "product_name": "Oat milk 1l",
                    "category": "dairy",
                    "match_rate": 84.0,
                    "match_rate_low": 71.5,
                    "match_rate_high": 91.7,
                    "affinity": "High",
                    "mean_score": 0.8123,
                    "users": 42,
                }
            ],
        },
        {
            "region": "north",
            "mode": "exact",
            "source": "aggregates",
            "window_start": None,
            "window_end": None,
            "generation": 12,
            "computed_at": "2026-11-26T06:04:31+00:00",
            "population": 1874,
            "sample_size": 1874,
            "items": [
                {
                    "product_id": "P0007",
                    "product_name": "Oat milk 1l",
                    "category": "dairy",
                    "match_rate": 81.3,
                    "match_rate_low": 79.5,
                    "match_rate_high": 83.0,
                    "affinity": "High",
                    "mean_score": 0.8071,
                    "users": 1524,
                }
            ],
        },
    )

    region: str
    mode: RegionMode = Field(description="sample: a fixed sample; exact: every active customer")
    source: RegionSource = Field(
        description="cache: the sampled customers' cached lists; aggregates: the batch's "
        "per-region counts of the current cache generation; popular: no cached list answers "
        "(the cache was invalidated), so the region's recent purchases: `users` bought the "
        "product, rates are over the region's active customers"
    )
    window_start: datetime | None = Field(
        description="sample: start of the window the sample is fixed for; exact: null"
    )
    window_end: datetime | None = Field(description="sample: when the next sample is drawn")
    generation: int | None = Field(description="exact: the cache generation counted")
    computed_at: datetime | None = Field(description="exact: when that generation completed")
    population: int = Field(description="active customers of the region")
    sample_size: int = Field(
        description="customers the rates are over: sampled (at most the asked sample_size) "
        "or, exact, the whole population"
    )
    items: list[RegionItem]


class RegionSummary(BaseModel):
    region: str
    customers: int = Field(description="customers of the region")
    active_customers: int = Field(description="of them, with a purchase since active_since")


class Regions(BaseModel):
    """Every region that has customers, by name."""

    model_config = with_examples(
        {
            "active_since": "2026-08-28T19:50:00+00:00",
            "regions": [
                {"region": "north", "customers": 2410, "active_customers": 1874},
                {"region": "south", "customers": 1980, "active_customers": 1503},
            ],
        }
    )

    active_since: datetime = Field(description="now minus active_days")
    regions: list[RegionSummary]
