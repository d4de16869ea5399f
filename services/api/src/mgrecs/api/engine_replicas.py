"""Several engine replicas without a load balancer in front of them.

In Compose and Kubernetes the engine's service name spreads the api's connections over the
replicas. Where nothing does (processes on one machine, `bench/api_latency.py --engines`),
the api's `MGRECS_PERSONALIZE_ENDPOINT_URL` may name them all, comma separated: one client
per replica, the calls taken round robin.
"""

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from mgrecs.common.personalize import runtime_client
from mgrecs.common.settings import Settings


class RoundRobin:
    """Stands for one `personalize-runtime` client; each operation looked up goes to the
    next replica's client."""

    def __init__(self, clients: Sequence[Any]) -> None:
        self._next = itertools.cycle(clients)

    def __getattr__(self, operation: str) -> Any:
        return getattr(next(self._next), operation)


def endpoint_urls(settings: Settings) -> list[str]:
    """The engine replicas `personalize_endpoint_url` names (none: AWS)."""
    text = settings.personalize_endpoint_url or ""
    return [url.strip() for url in text.split(",") if url.strip()]


@asynccontextmanager
async def runtime_clients(settings: Settings) -> AsyncIterator[Any]:
    """The api's runtime client: the usual one for one endpoint (or AWS), else `RoundRobin`
    over one client per replica."""
    urls = endpoint_urls(settings)
    if len(urls) <= 1:
        async with runtime_client(settings) as client:
            yield client
        return
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                runtime_client(settings.model_copy(update={"personalize_endpoint_url": url}))
            )
            for url in urls
        ]
        yield RoundRobin(clients)
