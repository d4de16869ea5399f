"""How every HTTP service starts: settings from the environment, structured logs, uvicorn."""

from collections.abc import Callable
from typing import Any

import uvicorn

from mgrecs.common.logging import configure_logging
from mgrecs.common.settings import Settings, get_settings


def run_http_service(
    create_app: Callable[[Settings], Any], port: Callable[[Settings], int]
) -> None:
    """Build the app from `MGRECS_*` settings and serve it until SIGTERM/SIGINT."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=port(settings),
        log_config=None,
        access_log=False,
    )
