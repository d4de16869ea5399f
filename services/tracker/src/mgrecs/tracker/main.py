"""`mgrecs-tracker [--sink db|events|feedback|products|served|all]`: run the sinks until
SIGTERM/SIGINT."""

import argparse
import asyncio
import os
from typing import Any

import uvloop

from mgrecs.common.logging import configure_logging
from mgrecs.common.probes import Check, serving_probes
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.signals import stop_on_signals
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.common.usage import mode_of
from mgrecs.store.usage import metering
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from mgrecs.tracker.feedback_sink import FeedbackSink
from mgrecs.tracker.products_sink import ProductsSink
from mgrecs.tracker.served_sink import ServedSink
from mgrecs.tracker.worker import ConsumerWorker

SINKS: dict[str, tuple[type[ConsumerWorker[Any]], ...]] = {
    "db": (DbSink,),
    "events": (EventsSink,),
    "feedback": (FeedbackSink,),
    "products": (ProductsSink,),
    "served": (ServedSink,),
    "all": (DbSink, EventsSink, FeedbackSink, ProductsSink, ServedSink),
}


async def run_sinks(settings: Settings, sink: str = "all") -> None:
    """Run the chosen sinks as independent tasks until SIGTERM/SIGINT, serving `/metrics`,
    `/healthz` and `/readyz` (each sink's consumer and target) on the tracker metrics port.

    If one sink fails the others are stopped cleanly and the error ends the process, so the
    orchestrator restarts it instead of leaving half a tracker running.
    """
    workers = [
        worker(settings)
        for worker in SINKS[sink]
        for _ in range(settings.tracker_db_consumers if worker is DbSink else 1)
    ]
    async with (
        serving_probes(settings.host, settings.tracker_metrics_port, _checks(workers)),
        metering(settings, mode_of(settings), "tracker"),
    ):
        await _run(workers)


def _checks(workers: list[ConsumerWorker[Any]]) -> dict[str, Check]:
    """One readiness check per sink: ready when each of its consumers is."""
    by_sink: dict[str, list[ConsumerWorker[Any]]] = {}
    for worker in workers:
        by_sink.setdefault(worker.sink, []).append(worker)

    def every(members: list[ConsumerWorker[Any]]) -> Check:
        async def check() -> str:
            for member in members:
                verdict = await member.ready()
                if verdict != "ok":
                    return verdict
            return "ok"

        return check

    return {sink: every(members) for sink, members in by_sink.items()}


async def _run(workers: list[ConsumerWorker[Any]]) -> None:

    async def stop_all() -> None:
        await asyncio.gather(*(worker.stop() for worker in workers))

    with stop_on_signals(stop_all):
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        await stop_all()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # re-raise a sink's failure


def main() -> None:
    parser = argparse.ArgumentParser(prog="mgrecs-tracker", description=__doc__)
    parser.add_argument("--sink", choices=sorted(SINKS), default="all")
    args = parser.parse_args()
    settings = get_settings()
    if args.sink in ("events", "all"):  # PutEvents are signed with it
        require_secrets(settings, "aws_secret_access_key", service="mgrecs-tracker")
    else:
        require_secrets(settings, service="mgrecs-tracker")
    configure_logging(settings.log_level, settings.log_json)
    if settings.tracker_nice:
        os.nice(settings.tracker_nice)
    uvloop.run(run_sinks(settings, args.sink))  # a faster event loop, same asyncio API


if __name__ == "__main__":
    main()
