"""`GET /v1/experiments`: the configured experiments; `GET /v1/experiments/{id}`: an A/B
experiment's arms, offline and online side by side."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from mgrecs.api.deps import PoolDep, SettingsDep
from mgrecs.api.experiment_report import experiment_report
from mgrecs.api.schemas.experiments import ExperimentReport, ExperimentSummary
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.schemas import ID_PATTERN

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, examples=["ease-vs-als"])
]


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
    experiment_id: ExperimentId, settings: SettingsDep, pool: PoolDep
) -> ExperimentReport:
    """Per arm: its model version's offline metrics, the distinct customers that reported
    feedback, the event counts, and with 95 % confidence intervals CTR = clicks /
    impressions and conversion = purchases / impressions (Wilson score intervals) and
    revenue per impression (normal approximation)."""
    experiment = next((e for e in settings.experiments if e.id == experiment_id), None)
    if experiment is None:
        raise HTTPException(status_code=404, detail=f"unknown experiment {experiment_id}")
    return await experiment_report(pool, experiment)
