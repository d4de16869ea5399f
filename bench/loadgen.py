"""Open-loop HTTP load at a fixed rate, run as its own process (bench/api_latency.py starts it).

    python bench/loadgen.py --base http://127.0.0.1:8002 --paths-file paths.txt --rate 1000
    python bench/loadgen.py --serve-trivial 8123     # a near-free server to find our own limit

Request i is due at start + i / rate whether or not earlier ones have answered (open loop:
a slow server does not slow the offered load down). Latency is measured from the moment the
request was due, so time spent waiting for a connection or behind a late schedule counts
against the server (no coordinated omission). Prints one JSON line with the step's figures.
"""

import argparse
import asyncio
import json
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop

TRIVIAL_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _Trivial(asyncio.Protocol):
    """Answers every request on a keep-alive connection at once, without parsing it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(TRIVIAL_ANSWER * data.count(b"\r\n\r\n"))


async def serve_trivial(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Trivial, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; httptools parses the
    answers (aiohttp's per-request cost, about 0.5 ms, would cap the generator near the
    rates we measure)."""

    def __init__(
        self,
        idle: list["_Connection"],
        backlog: deque[tuple[bytes, float]],
        done: Callable[[int, float], None],
    ) -> None:
        self.idle = idle
        self.backlog = backlog
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.due = 0.0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, due: float) -> None:
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.done(self.parser.get_status_code(), self.due)
        if self.backlog:
            self.send(*self.backlog.popleft())
        else:
            self.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.idle:
            self.idle.remove(self)
        if not self.lost.done():
            self.lost.set_result(None)


async def load(
    host: str, port: int, paths: list[str], rate: float, seconds: float, max_connections: int
) -> dict[str, object]:
    """Offer `rate` requests a second for `seconds`, cycling through `paths`, over at most
    `max_connections` (past that, due requests wait here, their wait counted as latency)."""
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    finished = loop.create_future()
    idle: list[_Connection] = []
    opened: list[_Connection] = []
    backlog: deque[tuple[bytes, float]] = deque()
    connecting = 0
    lag = 0.0

    def done(status: int, due: float) -> None:
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if len(latencies) == total and not finished.done():
            finished.set_result(None)

    async def connect(request: bytes, due: float) -> None:
        nonlocal connecting
        connecting += 1
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(idle, backlog, done), host, port
            )
        except OSError as exc:
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            return
        finally:
            connecting -= 1
        opened.append(connection)
        connection.send(request, due)

    def fire(request: bytes, due: float) -> None:
        if idle:
            idle.pop().send(request, due)
        elif len(opened) + connecting < max_connections:
            loop.create_task(connect(request, due))
        else:
            backlog.append((request, due))

    requests = [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for path in paths]
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        fire(requests[i % len(requests)], due)
    try:
        await asyncio.wait_for(finished, timeout=seconds + 10)
    except TimeoutError:
        statuses["timeout"] = total - len(latencies)
    wall = time.perf_counter() - start
    for connection in opened:
        connection.transport.close()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "offered": rate,
        "rps": round(len(latencies) / wall, 1),
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(latencies), 2),
        "errors": sum(n for status, n in statuses.items() if status != "200"),
        "statuses": statuses,
        "connections": len(opened),
        "schedule_lag_ms": round(lag * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base")
    parser.add_argument("--paths-file", type=Path)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--serve-trivial", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.serve_trivial:
        uvloop.run(serve_trivial(args.serve_trivial))
        return
    paths = args.paths_file.read_text().split()
    base = urlsplit(args.base)
    host, port = base.hostname or "127.0.0.1", base.port or 80
    print(
        json.dumps(
            uvloop.run(load(host, port, paths, args.rate, args.seconds, args.max_connections))
        )
    )


if __name__ == "__main__":
    main()
