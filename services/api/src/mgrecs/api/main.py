"""`mgrecs-api`: serve the API on the configured host and port."""

from mgrecs.api.app import create_app
from mgrecs.common.service import run_http_service


def main() -> None:
    run_http_service(create_app, lambda settings: settings.api_port)


if __name__ == "__main__":
    main()
