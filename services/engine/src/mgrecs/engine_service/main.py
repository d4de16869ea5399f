"""`mgrecs-engine`: serve the Personalize stand-in on the configured host and port."""

from mgrecs.common.service import run_http_service
from mgrecs.engine_service.app import create_app


def main() -> None:
    run_http_service(create_app, lambda settings: settings.engine_port)


if __name__ == "__main__":
    main()
