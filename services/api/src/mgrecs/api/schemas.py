"""Response models of the API: the contract with the frontend (shown in OpenAPI)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from mgrecs.api.experiment_schemas import ExperimentTag
from mgrecs.common import topics
from mgrecs.common.quality import QualityReport
from mgrecs.common.schemas import ID_PATTERN, TickKind

Source = Literal["cache", "realtime", "popular", "none"]
Affinity = Literal["High", "Medium", "Low"]


class RecommendedItem(BaseModel):
    """One recommended product; scores are 0.0-1.0, higher is better."""

    product_id: str
    score: float
    reason: str | None = None


class CacheFreshness(BaseModel):
    """How old the cache behind an answer is: a generation past `cache_ttl_hours` (the infer
    is late or failed) still serves, marked stale, when nothing fresher answers."""

    stale: bool = Field(
        default=False,
        description="true: from a cache generation older than cache_ttl_hours (the infer is "
        "late); served because nothing fresher answered",
    )
    cache_age_seconds: float | None = Field(
        default=None,
        description="age of the cache generation the answer came from (null: not from the cache)",
    )


class UserRecommendations(CacheFreshness):
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
                    "model_version": "20261122T030000Z-3f9a1c",
                    "stale": False,
                    "cache_age_seconds": 4210.5,
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
        description="the model version that made the list: the one the cache generation was "
        "scored with, or the one the engine serves (the customer's arm's in an experiment); "
        "null for popularity: echo it in feedback",
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


class SimilarProducts(CacheFreshness):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "P0001",
                    "source": "cache",
                    "updated_at": "2026-11-26T03:00:00",
                    "items": [{"product_id": "P0002", "score": 0.88}],
                    "stale": True,
                    "cache_age_seconds": 26510.0,
                }
            ]
        }
    )

    product_id: str
    source: Source = Field(description="cache, realtime (the engine) or none (engine down)")
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]


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


RegionMode = Literal["sample", "exact"]
RegionSource = Literal["cache", "aggregates", "popular"]


class RegionRecommendations(CacheFreshness):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
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
            ]
        }
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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "active_since": "2026-08-28T19:50:00+00:00",
                    "regions": [
                        {"region": "north", "customers": 2410, "active_customers": 1874},
                        {"region": "south", "customers": 1980, "active_customers": 1503},
                    ],
                }
            ]
        }
    )

    active_since: datetime = Field(description="now minus active_days")
    regions: list[RegionSummary]


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
                    "detail": "database: unreachable",
                    "checks": {"database": "unreachable"},
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

    @classmethod
    def of(cls, report_id: int, report: QualityReport) -> "StoredQualityReport":
        return cls(
            id=report_id,
            source=report.source,
            kind=report.kind,
            created_at=report.created_at,
            passed=report.passed,
            report=report,
        )


class QualityReports(BaseModel):
    """The newest data-quality reports, newest first."""

    items: list[StoredQualityReport]


class CacheTableStatus(BaseModel):
    """One table the old readers read, as the current generation has it."""

    table: str
    rows: int | None
    age_seconds: float | None = Field(
        description="since its rows were made current (a generation's tables become current "
        "together, in one transaction)"
    )


class CacheStatus(BaseModel):
    """The cache the API serves, and how often it answered the user endpoint."""

    generation: int | None = Field(description="the current generation (null: none)")
    model_version: str | None
    completed_at: datetime | None
    age_seconds: float | None
    ttl_hours: float = Field(description="cache_ttl_hours (0: never expires)")
    fresh: bool = Field(description="a generation is current and younger than the TTL")
    users: int | None = Field(description="customers with a cached list in it")
    products: int | None = Field(description="products with cached similar items in it")
    answers: dict[str, int] = Field(
        description="answers of GET /v1/users/{id}/recommendations by source, since this "
        "API process started"
    )
    hit_rate: float | None = Field(description="cache answers / all answers (null: none yet)")
    tables: list[CacheTableStatus] = Field(
        default_factory=list, description="each cache table with its rows and age"
    )


class ModelVersionStatus(BaseModel):
    version: str
    recipe: str
    trained_at: datetime
    active: bool
    promoted_at: datetime | None
    decision: str | None = Field(description="why it is (or is not) active")
    metrics: dict[str, Any]


class DriftStatus(BaseModel):
    """The newest drift report's verdict (README, Drift)."""

    id: int
    checked_at: datetime
    model_version: str
    drifted: bool
    flags: list[str]


class JobStatus(BaseModel):
    """A batch job (one schedule tick) and its steps so far."""

    tick_id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    steps: list[dict[str, Any]] = Field(description="[{step, seconds, status}] in order")


class GroupLagStatus(BaseModel):
    group: str
    lag: int = Field(description="records of topic orders not yet committed by the group")
    committed: bool = Field(description="false: the group never committed (lag from start)")


class ConsumerLag(BaseModel):
    groups: list[GroupLagStatus]
    dead_letters: dict[str, int] = Field(
        description="records held by each dead-letter topic (empty: broker unreachable)"
    )
    error: str | None = Field(description="why the lag is unknown (broker unreachable)")


class Status(BaseModel):
    """What an operator checks first: is the cache fresh and used, which models serve and
    how good they are, did the data or the model drift, did the jobs run, are the tracker's
    consumers keeping up."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cache": {
                        "generation": 12,
                        "model_version": "v20261126-0300",
                        "completed_at": "2026-11-26T06:04:31+00:00",
                        "age_seconds": 4210.5,
                        "ttl_hours": 6.0,
                        "fresh": True,
                        "users": 10000,
                        "products": 2000,
                        "answers": {"cache": 9820, "realtime": 160, "popular": 20},
                        "hit_rate": 0.982,
                    },
                    "models": [
                        {
                            "version": "v20261126-0300",
                            "recipe": "cooccurrence",
                            "trained_at": "2026-11-26T03:00:12+00:00",
                            "active": True,
                            "promoted_at": "2026-11-26T03:02:40+00:00",
                            "decision": "ndcg@10 0.212 >= 0.205 of the active version",
                            "metrics": {"ndcg@10": 0.212},
                        }
                    ],
                    "quality": None,
                    "drift": {
                        "id": 31,
                        "checked_at": "2026-11-26T06:05:00+00:00",
                        "model_version": "v20261126-0300",
                        "drifted": False,
                        "flags": [],
                    },
                    "jobs": [
                        {
                            "tick_id": "infer-20261126T0600",
                            "kind": "infer",
                            "started_at": "2026-11-26T06:00:00+00:00",
                            "finished_at": "2026-11-26T06:04:31+00:00",
                            "steps": [{"step": "infer", "seconds": 270.2, "status": "ok"}],
                        }
                    ],
                    "consumer_lag": {
                        "groups": [
                            {"group": topics.TRACKER_DB_GROUP, "lag": 0, "committed": True},
                            {"group": topics.TRACKER_EVENTS_GROUP, "lag": 12, "committed": True},
                        ],
                        "dead_letters": {
                            topics.ORDERS_DLQ: 3,
                            topics.ORDERS_EVENTS_DLQ: 0,
                            topics.SCHEDULE_TICKS_DLQ: 0,
                            topics.INFER_SHARDS_DLQ: 0,
                            topics.FEEDBACK_DLQ: 0,
                        },
                        "error": None,
                    },
                }
            ]
        }
    )

    cache: CacheStatus
    models: list[ModelVersionStatus] = Field(description="the newest model versions")
    quality: StoredQualityReport | None = Field(description="the newest data-quality report")
    drift: DriftStatus | None = Field(description="the newest drift report")
    jobs: list[JobStatus] = Field(description="the newest batch jobs, newest first")
    consumer_lag: ConsumerLag
