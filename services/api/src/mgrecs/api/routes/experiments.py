"""`GET /v1/experiments`: the configured experiments; `GET /v1/experiments/{id}`: an A/B
experiment's arms, offline and online side by side."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from mgrecs.api.deps import PoolDep, SettingsDep
from mgrecs.api.experiment_comparison import Plan
from mgrecs.api.experiment_report import experiment_report
from mgrecs.api.schemas.experiments import ExperimentReport, ExperimentSummary
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.schemas import ID_PATTERN

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, examples=["ease-vs-als"])
]
Mde = Annotated[
    float,
    Query(gt=0, le=10, description="minimum detectable effect: a relative lift (0.1: +10 %)"),
]
Alpha = Annotated[
    float,
    Query(
        ge=0.0001,
        le=0.5,
        description="significance level, two-sided (from 0.0001: below, the interval's bounds "
        "are past what a float resolves)",
    ),
]
Power = Annotated[float, Query(ge=0.5, lt=1, description="chance to detect a lift of `mde`")]


@router.get("", response_model=list[ExperimentSummary], summary="The configured experiments")
async def list_experiments(settings: SettingsDep) -> list[ExperimentSummary]:
    """From the `experiments` setting, in its order: what the dashboard lists."""
    return [ExperimentSummary.of(experiment) for experiment in settings.experiments]


@router.get(
    "/{experiment_id}",
    response_model=ExperimentReport,
    responses={404: {"model": ErrorMessage, "description": "unknown experiment"}},
    summary="An experiment's arms: offline metrics, CTR, conversion, revenue",
)
async def get_experiment(
    experiment_id: ExperimentId,
    settings: SettingsDep,
    pool: PoolDep,
    mde: Mde = 0.1,
    alpha: Alpha = 0.05,
    power: Power = 0.8,
) -> ExperimentReport:
    """Per arm: its model version's offline metrics, the distinct customers that reported
    feedback, the event counts, and with 95 % confidence intervals CTR = clicks /
    impressions and conversion = purchases / impressions (Wilson score intervals) and
    revenue per impression and per customer (normal approximation); the impressions by the
    source that served them.

    Then every other arm against the first (`comparisons`): the difference with its
    interval at 1 − `alpha` and p-value (two-proportion z-test for CTR and conversion,
    percentile bootstrap for revenue per customer); per arm the sample size it needs to
    detect a relative lift of `mde` with `power`, and how many more (`warning` while any arm
    is short); `served_alike` false when the model arms were served from different sources."""
    experiment = next((e for e in settings.experiments if e.id == experiment_id), None)
    if experiment is None:
        raise HTTPException(status_code=404, detail=f"unknown experiment {experiment_id}")
    return await experiment_report(pool, experiment, Plan(mde=mde, alpha=alpha, power=power))
