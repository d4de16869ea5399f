"""`mgrecs-api`: serve the API on the configured host and port, in `api_workers` processes."""

import uvicorn
from fastapi import FastAPI

from mgrecs.api.app import create_app
from mgrecs.common.logging import configure_logging
from mgrecs.common.service import run_http_service
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.startup_secrets import require_secrets

WORKER_HEALTHCHECK_SECONDS = 60
"""uvicorn's default (5 s) restarts workers still importing on a busy 2-core machine, forever."""


def app_from_environment() -> FastAPI:
    """The app of one worker process, from `MGRECS_*` settings (uvicorn's factory)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def require_api_secrets(settings: Settings) -> None:
    """Read keys (customer data is never open), the engine's or AWS's secret (the runtime
    client signs with it); admin keys may be empty (the admin endpoints are then off)."""
    require_secrets(
        settings,
        "api_read_keys",
        "aws_secret_access_key",
        may_be_empty=["api_admin_keys"],
        service="mgrecs-api",
    )


def main() -> None:
    settings = get_settings()
    require_api_secrets(settings)
    if settings.api_workers <= 1:
        run_http_service(create_app, lambda s: s.api_port)
        return
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        "mgrecs.api.main:app_from_environment",
        factory=True,
        workers=settings.api_workers,
        host=settings.host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        # A worker busy at start (imports on a loaded machine) is not a dead one.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


if __name__ == "__main__":
    main()
