"""The API's cost per request without sockets or load generator: the app of this checkout
(`create_app`, its lifespan run, no broker) called as ASGI by `--callers` concurrent
callers, `--requests` GETs of a paths file after `--warm` of them. Prints process CPU per
request; under callgrind, counts the instructions of the measured requests only (and of
switching the counting on and off: take the difference of two request counts):

    for n in 1000 2000; do
      valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.$n \
        .venv/bin/python bench/api_request_cost.py --database-url URL --paths user.txt \
        --callgrind --requests $n
      callgrind_annotate /tmp/cg.$n | grep 'PROGRAM TOTALS'
    done    # instructions per request: (total at 2000 - total at 1000) / 1000

Instruction counts hold on a shared machine, where CPU time per request moves by 5-15 %
from run to run (bench/RESULTS.md, the api's per-request floor). The database and paths
are `bench/api_latency.py`'s (its `prepare`, e.g. into a database of the machine's
PostgreSQL).
"""

import argparse
import asyncio
import os
import subprocess
import time
from pathlib import Path

from fastapi import FastAPI
from starlette.types import Message

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings


async def call(app: FastAPI, path: str) -> int:
    """One GET through the whole app (middlewares included); its status."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def _instrument(on: bool) -> None:
    """Callgrind's instrumentation of this process on or off (the event loop keeps running
    while `callgrind_control` waits for valgrind to take the command)."""
    command = await asyncio.create_subprocess_exec(
        "callgrind_control",
        "-i",
        "on" if on else "off",
        str(os.getpid()),
        stdout=subprocess.DEVNULL,
    )
    await command.wait()


async def run(args: argparse.Namespace, paths: list[str]) -> None:
    settings = Settings(
        database_url=args.database_url, served_recording=not args.no_served_recording
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for path in paths[: args.warm]:
            await call(app, path)
        measured = [paths[(args.warm + n) % len(paths)] for n in range(args.requests)]
        statuses: dict[int, int] = {}

        async def caller(first: int) -> None:
            for path in measured[first :: args.callers]:
                status = await call(app, path)
                statuses[status] = statuses.get(status, 0) + 1

        if args.callgrind:
            await _instrument(True)
        started = time.process_time()
        await asyncio.gather(*(caller(n) for n in range(args.callers)))
        cpu = time.process_time() - started
        if args.callgrind:
            await _instrument(False)
    print(
        f"{args.requests} requests after {args.warm}: CPU {1000 * cpu / args.requests:.3f} ms "
        f"per request, statuses {statuses}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--paths", required=True, help="one path a line (api_latency's)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=1000)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument(
        "--no-served-recording",
        action="store_true",
        help="answers not recorded (by default recorded and, with no broker, dropped)",
    )
    parser.add_argument(
        "--callgrind", action="store_true", help="run under valgrind --instr-atstart=no"
    )
    args = parser.parse_args()
    os.environ.setdefault("MGRECS_ENV", "development")
    asyncio.run(run(args, Path(args.paths).read_text().split()))


if __name__ == "__main__":
    main()
