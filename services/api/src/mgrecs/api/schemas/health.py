"""The answers of `routes.health`: liveness and readiness."""

from typing import Literal

from pydantic import BaseModel

from mgrecs.api.schemas.shared import with_examples


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class Readiness(BaseModel):
    """Each check's verdict: `ok`, or what is wrong (the first failed one is in `detail`)."""

    model_config = with_examples(
        {
            "status": "unavailable",
            "detail": "database: unreachable",
            "checks": {"database": "unreachable"},
        }
    )

    status: Literal["ok", "unavailable"]
    detail: str | None = None
    checks: dict[str, str]
