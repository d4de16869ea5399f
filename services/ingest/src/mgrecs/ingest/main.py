"""`mgrecs-ingest`: serve the ingest service on the configured host and port."""

from mgrecs.common.service import run_http_service
from mgrecs.common.settings import get_settings
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.ingest.app import create_app


def main() -> None:
    require_secrets(get_settings(), "ingest_api_keys", service="mgrecs-ingest")
    run_http_service(create_app, lambda settings: settings.ingest_port)


if __name__ == "__main__":
    main()
