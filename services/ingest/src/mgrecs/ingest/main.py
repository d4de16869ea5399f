"""`mgrecs-ingest`: serve the ingest service on the configured host and port."""

from mgrecs.common.service import run_http_service
from mgrecs.ingest.app import create_app


def main() -> None:
    run_http_service(create_app, lambda settings: settings.ingest_port)


if __name__ == "__main__":
    main()
