"""`POST /v1/feedback`: what customers did with recommendations, onto topic `feedback`."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from mgrecs.api.deps import SettingsDep
from mgrecs.api.experiment_serving import assign
from mgrecs.api.feedback import FeedbackPublisher, FeedbackUnavailable
from mgrecs.api.schemas.feedback import FeedbackAccepted, FeedbackBatch
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings

router = APIRouter(prefix="/v1", tags=["feedback"])
log = get_logger(__name__)


def _problem(loc: tuple[str | int, ...], message: str, value: object) -> dict[str, Any]:
    """A validation error shaped as pydantic's, so the 422 reads like any other."""
    return {"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}


def _wrong_arms(batch: FeedbackBatch, settings: Settings) -> list[dict[str, Any]]:
    """Problems with events naming an experiment that is not configured, or an arm that is not
    the customer's (the split is a stable hash: the arm a customer was served is known, so
    results cannot be forged by naming another)."""
    experiments = {experiment.id: experiment for experiment in settings.experiments}
    problems = []
    for index, event in enumerate(batch.events):
        if event.experiment_id is None or event.arm is None:
            continue
        experiment = experiments.get(event.experiment_id)
        if experiment is None:
            problems.append(
                _problem(
                    ("events", index, "experiment_id"), "unknown experiment", event.experiment_id
                )
            )
        elif experiment.arm(event.arm) is None:
            problems.append(
                _problem(
                    ("events", index, "arm"), f"no arm {event.arm} in {experiment.id}", event.arm
                )
            )
        elif (assigned := assign(experiment, event.customer_id).name) != event.arm:
            message = f"customer {event.customer_id} is in arm {assigned} of {experiment.id}"
            problems.append(_problem(("events", index, "arm"), message, event.arm))
    return problems


@router.post(
    "/feedback",
    response_model=FeedbackAccepted,
    status_code=202,
    responses={503: {"model": ErrorMessage, "description": "the broker is unreachable"}},
    summary="Report impressions, clicks, add-to-carts and purchases",
)
async def post_feedback(
    batch: FeedbackBatch, request: Request, settings: SettingsDep
) -> FeedbackAccepted:
    """Publish the events to topic `feedback` (the tracker writes them to `feedback_events`).

    Echo `model_version`, `source` and, for customers in an experiment, `experiment_id` and
    `arm` from the recommendation answer (an arm that is not the customer's is a 422). Needs
    a read key (README, Security). Sending an event again is harmless: its
    `event_id` (the client's, else derived from the event) makes the write idempotent."""
    problems = []
    if len(batch.events) > settings.max_feedback_events:
        message = f"at most {settings.max_feedback_events} events per request"
        problems.append(_problem(("events",), message, len(batch.events)))
    problems += _wrong_arms(batch, settings)
    if problems:
        raise RequestValidationError(problems)
    publisher: FeedbackPublisher = request.app.state.feedback
    try:
        await publisher.publish(batch.events)
    except FeedbackUnavailable as exc:
        log.error("feedback_not_published", events=len(batch.events), error=str(exc))
        raise HTTPException(
            status_code=503, detail="broker unavailable: feedback not accepted, send it again"
        ) from exc
    ids = [str(event.event_id) for event in batch.events]
    return FeedbackAccepted(accepted=len(ids), event_ids=ids)
