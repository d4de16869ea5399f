"""`mgrecs-api`: serve the API with uvicorn on the configured host and port."""

import uvicorn

from mgrecs.api.app import create_app
from mgrecs.common.logging import configure_logging
from mgrecs.common.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
