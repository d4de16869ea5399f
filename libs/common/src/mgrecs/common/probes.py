"""`/metrics`, `/healthz` and `/readyz` of a worker (tracker, batch, scheduler), served by
uvicorn inside the worker's own event loop: an answer to `/healthz` proves the loop runs, and
`/readyz` asks the worker's dependencies."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mgrecs.common.metrics import add_metrics_route

Check = Callable[[], Awaitable[str]]
"""Says `ok`, or why the dependency is not usable."""
CHECK_TIMEOUT_SECONDS = 3.0


async def _verdict(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # a probe reports a failure, it does not raise one
        return f"unreachable: {type(exc).__name__}"


def probe_app(checks: Mapping[str, Check]) -> Starlette:
    """The three routes; `/readyz` is 503 naming each check that is not `ok`."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        names = list(checks)
        verdicts = await asyncio.gather(*(_verdict(checks[name]) for name in names))
        results = dict(zip(names, verdicts, strict=True))
        ready = all(verdict == "ok" for verdict in verdicts)
        body = {"status": "ok" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])
    add_metrics_route(app)
    return app


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the worker that embeds it."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving_probes(host: str, port: int, checks: Mapping[str, Check]) -> AsyncIterator[None]:
    """Serve the probes on host:port for the duration of the block."""
    config = uvicorn.Config(
        probe_app(checks),
        host=host,
        port=port,
        log_config=None,  # the worker's logging
        log_level="warning",  # no lines per probe, nor uvicorn's banner
        access_log=False,
        lifespan="off",
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.should_exit = True
        with suppress(asyncio.CancelledError):
            await task
