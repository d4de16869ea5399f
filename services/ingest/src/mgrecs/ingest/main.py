"""`mgrecs-ingest`: run the ingest HTTP service."""

import uvicorn

from mgrecs.common.logging import configure_logging
from mgrecs.common.settings import get_settings
from mgrecs.ingest.app import create_app


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.ingest_port)


if __name__ == "__main__":
    main()
