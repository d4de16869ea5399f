"""`mgrecs-batch`: run the batch worker until SIGTERM/SIGINT, serving `/metrics`, `/healthz` and
`/readyz` (broker and database) on the batch metrics port."""

import asyncio

from mgrecs.batch.worker import BatchWorker
from mgrecs.common.logging import configure_logging
from mgrecs.common.probes import serving_probes
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.signals import stop_on_signals
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.store.health import database_check
from mgrecs.store.usage import metering


async def serve(settings: Settings) -> None:
    """Run the worker; a signal lets the job in progress finish, then stops cleanly."""
    worker = BatchWorker(settings)
    checks = {"kafka": worker.ready, "database": database_check(settings.database_url)}
    with stop_on_signals(worker.stop):
        async with (
            serving_probes(settings.host, settings.batch_metrics_port, checks),
            metering(settings, settings.batch_mode, "batch"),
        ):
            await worker.run()


def main() -> None:
    settings = get_settings()
    aws = ["aws_secret_access_key"] if settings.batch_mode == "aws" else []
    require_secrets(settings, *aws, service="mgrecs-batch")
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
