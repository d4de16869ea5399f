"""Response models of the API: the contract with the frontend (shown in OpenAPI)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from mgrecs.api.experiment_schemas import ExperimentTag
from mgrecs.common.quality import QualityReport
from mgrecs.common.schemas import ID_PATTERN, TickKind

Source = Literal["cache", "realtime", "popular", "none"]
Affinity = Literal["High", "Medium", "Low"]


class RecommendedItem(BaseModel):
    """One recommended product; scores are 0.0-1.0, higher is better."""

    product_id: str
    score: float
    reason: str | None = None


class UserRecommendations(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "C00001",
                    "source": "cache",
                    "updated_at": "2026-11-26T03:00:00",
                    "items": [
                        {"product_id": "P0007", "score": 0.93, "reason": "bought together"},
                        {"product_id": "P0012", "score": 0.71},
                    ],
                }
            ]
        }
    )

    user_id: str
    source: Source = Field(
        description="cache: nightly batch; realtime: the engine; popular: regional fallback"
    )
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]
    model_version: str | None = Field(
        default=None,
        description="the model version that made the list, when known (customers in an "
        "experiment): echo it in feedback",
    )
    experiment: ExperimentTag | None = Field(
        default=None, description="the customer's experiment arm: echo it in feedback"
    )


MAX_RANK_PRODUCTS = 500
"""GetPersonalizedRanking's limit on one input list."""

CacheId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ID_PATTERN)]


def _distinct(values: list[str]) -> list[str]:
    """The product ids once each, in their first order."""
    return list(dict.fromkeys(values))


class RankRequest(BaseModel):
    """The products to put in order for one customer."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"product_ids": ["P0007", "P0012"]}]}
    )

    product_ids: Annotated[
        list[CacheId],
        Field(min_length=1, max_length=MAX_RANK_PRODUCTS, description="1-500 product ids"),
        AfterValidator(_distinct),
    ]


class UserRanking(BaseModel):
    """The asked products, best first for the customer (every one of them, once)."""

    user_id: str
    source: Source = Field(description="realtime: the engine; popular: it was down")
    items: list[RecommendedItem]


class SimilarProducts(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "P0001",
                    "source": "cache",
                    "updated_at": "2026-11-26T03:00:00",
                    "items": [{"product_id": "P0002", "score": 0.88}],
                }
            ]
        }
    )

    product_id: str
    source: Source = Field(description="cache, realtime (the engine) or none (engine down)")
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]


class RegionItem(BaseModel):
    """A product recommended to part of a region's sampled customers."""

    product_id: str
    product_name: str | None
    category: str | None
    match_rate: float = Field(description="% of sampled customers whose list contains it")
    affinity: Affinity = Field(description="High >= 80 %, Medium 40-79.9 %, Low < 40 %")
    mean_score: float = Field(description="mean score among the customers who got it")
    users: int = Field(description="sampled customers whose list contains it")


class RegionRecommendations(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "region": "north",
                    "window_start": "2026-11-26T06:00:00+00:00",
                    "sample_size": 50,
                    "items": [
                        {
                            "product_id": "P0007",
                            "product_name": "Oat milk 1l",
                            "category": "dairy",
                            "match_rate": 84.0,
                            "affinity": "High",
                            "mean_score": 0.8123,
                            "users": 42,
                        }
                    ],
                }
            ]
        }
    )

    region: str
    window_start: datetime = Field(description="start of the window the sample is fixed for")
    sample_size: int = Field(description="active customers sampled (at most region_sample_size)")
    items: list[RegionItem]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class Readiness(BaseModel):
    """Each check's verdict: `ok`, or what is wrong (the first failed one is in `detail`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "unavailable",
                    "detail": "cache: generation 7 is 7.5 h old, older than cache_ttl_hours 6",
                    "checks": {"database": "ok", "cache": "generation 7 is 7.5 h old, …"},
                }
            ]
        }
    )

    status: Literal["ok", "unavailable"]
    detail: str | None = None
    checks: dict[str, str]


class InvalidateRequest(BaseModel):
    """Exactly one of: the whole cache, one region's customers, one customer."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"all": True}, {"region": "north"}]}
    )

    all: bool = False
    region: CacheId | None = None
    customer: CacheId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "InvalidateRequest":
        if [self.all, self.region is not None, self.customer is not None].count(True) != 1:
            raise ValueError("give exactly one of all (true), region, customer")
        return self


class Invalidation(BaseModel):
    """What was invalidated; `generation` null when no generation was current."""

    generation: int | None
    users: int = Field(description="customer rows removed from the cache")
    products: int = Field(description="product rows no longer served (all only)")


class TickSent(BaseModel):
    kind: TickKind
    tick_id: str


class ErrorMessage(BaseModel):
    """Every error answer: a human-readable message in `detail`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unknown user C404"}]})

    detail: str


class StoredQualityReport(BaseModel):
    """A data-quality report of one sync, backfill or export, as stored."""

    id: int
    source: str
    kind: str
    created_at: datetime
    passed: bool
    report: QualityReport


class QualityReports(BaseModel):
    """The newest data-quality reports, newest first."""

    items: list[StoredQualityReport]
