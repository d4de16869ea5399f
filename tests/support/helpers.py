"""Helpers shared by tests: serve an ASGI app on a real port, wait for a condition."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import numpy as np
import uvicorn
from scipy import sparse

from mgrecs.common.personalize import signed_headers
from mgrecs.common.settings import Settings
from mgrecs.engine.recipes.base import TrainingData

T = TypeVar("T")


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[str]:
    """Run `app` with uvicorn on 127.0.0.1:`port` for the duration of the block."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll `check` until it returns a truthy value; fail with its last value on timeout."""
    deadline = time.monotonic() + timeout
    value: T = await check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await check()
    return value


@contextlib.asynccontextmanager
async def running(worker: Any) -> AsyncIterator[Any]:
    """Run a worker's `run()` as a task; `stop()` it and wait when the block ends."""
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop()
        await asyncio.wait_for(task, timeout=30)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` right now (all partitions, up to their end offsets).

    Counting against the end offsets makes "exactly N messages" a check that cannot pass early.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster metadata
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        partitions = [TopicPartition(topic, number) for number in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            records += [record for batch in batches.values() for record in batch]
        return records
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[Any]:
    """An httpx client calling `app` in-process, with the app's lifespan run around it."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield client


async def engine_stats(url: str) -> dict[str, Any]:
    """The engine's `/stats` at `url`, signed with the default key the tests' engines take."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{url}/stats", headers=signed_headers(Settings(), "GET", f"{url}/stats")
        )
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats


async def ready(url: str) -> bool:
    """Whether the service at `url` says it is ready (`/readyz` answers 200)."""
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{url}/readyz")).status_code == 200


class TcpProxy:
    """A TCP forwarder to `target` on a local port that can be cut (every connection closed,
    new ones refused) and restored: a server outage as its clients see it, without stopping
    a server other tests share."""

    def __init__(self, target_host: str, target_port: int, unix_path: str | None = None) -> None:
        self.target = (target_host, target_port)
        self.unix_path = unix_path
        """Forward to this Unix socket instead (the embedded PostgreSQL listens on one)."""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await (
                asyncio.open_unix_connection(self.unix_path)
                if self.unix_path
                else asyncio.open_connection(*self.target)
            )
        except OSError:
            writer.close()
            return
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def cut(self) -> None:
        """Close every connection and stop listening (clients get refused)."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        """Listen again on the same port."""
        await self.start()


DAY = 86_400.0
NOW = 1_780_000_000.0
""""Now" of the recipe tests' hand-written lines (a fixed moment: the same data every run)."""


def training_data(
    lines: list[tuple[int, int, float, int]], n_customers: int, n_items: int
) -> TrainingData:
    """From (customer, item, days ago, quantity) lines: weights log1p(total quantity), as
    the dataset builds them."""
    customer = np.array([c for c, _, _, _ in lines], dtype=np.int64)
    item = np.array([i for _, i, _, _ in lines], dtype=np.int64)
    time = np.array([NOW - d * DAY for _, _, d, _ in lines], dtype=np.float64)
    quantity = np.array([q for _, _, _, q in lines], dtype=np.float32)
    matrix = sparse.csr_matrix((quantity, (customer, item)), shape=(n_customers, n_items))
    matrix.sum_duplicates()
    matrix.data = np.log1p(matrix.data)
    return TrainingData(
        matrix=matrix.astype(np.float32),
        line_customer=customer,
        line_item=item,
        line_time=time,
        now=NOW,
    )
