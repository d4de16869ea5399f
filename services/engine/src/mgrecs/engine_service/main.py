"""`mgrecs-engine`: serve the Personalize stand-in on the configured host and port."""

from mgrecs.common.service import run_http_service
from mgrecs.common.settings import get_settings
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.engine_service.app import create_app


def main() -> None:
    require_secrets(get_settings(), "engine_credentials", service="mgrecs-engine")
    run_http_service(create_app, lambda settings: settings.engine_port)


if __name__ == "__main__":
    main()
