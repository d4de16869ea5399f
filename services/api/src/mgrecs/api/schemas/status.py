"""The answer of `routes.status`: the operator status page (cache, models, quality, drift,
jobs, consumer lag)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mgrecs.api.schemas.quality import StoredQualityReport
from mgrecs.api.schemas.shared import with_examples
from mgrecs.common import topics


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
    metrics: dict[str, Any] = Field(description="as stored by the training (model_versions)")
    figures: dict[str, float] = Field(
        default_factory=dict,
        description="its offline precision@10, recall@10, ndcg@10, mrr and coverage, those it "
        "has (a trained version's validation.chosen, an AWS version's solution metrics)",
    )
    online: dict[str, float | int | None] | None = Field(
        default=None,
        description="its newest online accuracy (customers, precision@10, recall@10, ndcg@10: "
        "the lists it served against what the customers bought next); null: never measured",
    )


class DriftStatus(BaseModel):
    """The newest drift report's verdict (docs/concepts.md, Model health (drift))."""

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

    model_config = with_examples(
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
                    "metrics": {"validation": {"chosen": {"ndcg@10": 0.212}}},
                    "figures": {"ndcg@10": 0.212},
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
                    {"group": topics.TRACKER_SERVED_GROUP, "lag": 140, "committed": True},
                ],
                "dead_letters": {
                    topics.ORDERS_DLQ: 3,
                    topics.ORDERS_EVENTS_DLQ: 0,
                    topics.SCHEDULE_TICKS_DLQ: 0,
                    topics.INFER_SHARDS_DLQ: 0,
                    topics.FEEDBACK_DLQ: 0,
                    topics.PRODUCTS_DLQ: 0,
                    topics.SERVED_DLQ: 0,
                },
                "error": None,
            },
        }
    )

    cache: CacheStatus
    models: list[ModelVersionStatus] = Field(description="the newest model versions")
    quality: StoredQualityReport | None = Field(description="the newest data-quality report")
    drift: DriftStatus | None = Field(description="the newest drift report")
    jobs: list[JobStatus] = Field(description="the newest batch jobs, newest first")
    consumer_lag: ConsumerLag
