"""`mgrecs-engine`: serve the Personalize stand-in with uvicorn on the configured port."""

import uvicorn

from mgrecs.common.logging import configure_logging
from mgrecs.common.settings import get_settings
from mgrecs.engine_service.app import create_app


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.engine_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
