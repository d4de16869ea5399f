"""`make bench-ingest`: validate, map and publish order lines to the broker, from a file of
a million lines, and show how memory behaves while it streams.

The file is written first by `mgrecs sample-data` in a child process (so generating it does
not count in this process's memory); then `backfill_file` — the code `mgrecs backfill`
runs: read, group into orders, validate each `OrderEvent`, publish keyed by customer and
wait for the broker's acks chunk by chunk — streams it to an embedded broker (Tansu, the
one `make demo` runs), with its data-quality report stored in a migrated database
(MGRECS_BENCH_DATABASE_URL, or an embedded PostgreSQL). Resident memory is read from /proc
at every tenth of the file.

Then the pull connector's path: the fake company API (its own process, serving the sample
data set in the company's format) -> `mgrecs sync`'s code (fetch pages, map each record by the
declarative mapping, validate, publish, save the watermark, the data-quality report).

Usage: python bench/ingest.py [--orders N] [--customers N] [--products N] [--keep FILE]
       [--sync-orders N]
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mgrecs.cli.embedded import EmbeddedBroker, free_port
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.settings import Settings
from mgrecs.ingest.backfill import backfill_file
from mgrecs.ingest.connector import OrderConnector, SyncReport, run_sync
from mgrecs.ingest.fake_company_api import orders_from_sample
from mgrecs.ingest.mapping import load_mapping
from mgrecs.ingest.publisher import OrderPublisher
from mgrecs.ingest.sample_data import generate
from support import migrated_database

TARGET_LINES_PER_SECOND = 20_000
"""The issue's bar: 20 x the hosted PutEvents default of 1,000 requests per second."""
PAGE_SIZE = 4096
MAPPING_FILE = Path(__file__).resolve().parent.parent / "deploy" / "company-api-mapping.json"


def resident_mib() -> float:
    """This process's resident memory now (not the peak), from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * PAGE_SIZE / 2**20


def write_file(path: Path, orders: int, customers: int, products: int) -> int:
    """Write the sample orders with `mgrecs sample-data`; returns the number of lines."""
    mgrecs = Path(sys.executable).with_name("mgrecs")
    subprocess.run(
        [
            str(mgrecs),
            "sample-data",
            str(path),
            "--orders",
            str(orders),
            "--customers",
            str(customers),
            "--products",
            str(products),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


async def stream(path: Path, lines: int, bootstrap: str, sync_orders: int) -> None:
    async with migrated_database("mgrecs_bench_ingest") as database_url:
        settings = Settings(
            kafka_bootstrap=bootstrap, topic_prefix="bench-ingest.", database_url=database_url
        )
        await ensure_topics(settings)
        await _stream(path, lines, settings)
        if sync_orders:
            await _sync(settings, sync_orders)
            await _map_and_publish(settings, sync_orders)


async def _sync(settings: Settings, orders: int) -> None:
    """One `mgrecs sync` pass over `orders` orders served by the fake company API."""
    port = free_port()
    api = await asyncio.to_thread(_start_company_api, port, orders)
    try:
        synced = settings.model_copy(
            update={
                "connector_base_url": f"http://127.0.0.1:{port}",
                "connector_token": "bench",
                "connector_page_size": 1000,
                "connector_requests_per_second": 1000.0,
                "connector_source": "bench",
                "connector_mapping_file": str(MAPPING_FILE),
            }
        )
        started = time.perf_counter()
        report = await run_sync(synced)
        seconds = time.perf_counter() - started
    finally:
        api.terminate()
        api.wait()
    assert report is not None and report.quality is not None
    lines = report.quality.lines
    print(
        f"connector sync (fake company API, pages of 1,000): {report.published:,} orders, "
        f"{lines:,} order lines, {report.pages} pages in {seconds:.1f} s "
        f"= {lines / seconds:,.0f} order lines per second"
    )


async def _map_and_publish(settings: Settings, orders: int) -> None:
    """The connector's own work, with the company API's records already in memory: map each
    record by the mapping file, validate, publish a page of 1,000, save the watermark, and the
    data-quality report; so the upstream's speed (above) is out of the figure."""
    data = generate(seed=9, customers=orders // 4, products=5000, orders=orders)
    records = orders_from_sample(data, legacy_every=0)
    synced = settings.model_copy(update={"connector_source": "bench-in-memory"})
    pool = await create_pool(settings.database_url, max_size=2)
    publisher = OrderPublisher(synced)
    connector = OrderConnector(synced, load_mapping(MAPPING_FILE), pool, publisher)
    report = SyncReport()
    try:
        started = time.perf_counter()
        for start in range(0, len(records), 1000):
            await connector.handle_page(records[start : start + 1000], report)
        seconds = time.perf_counter() - started
    finally:
        await connector.aclose()
        await publisher.close()
        await pool.close()
    lines = sum(len(order.lines) for order in data.orders)
    print(
        f"connector without HTTP (map, validate, publish, watermark): {report.published:,} "
        f"orders, {lines:,} order lines in {seconds:.1f} s = {lines / seconds:,.0f} order lines "
        f"per second (target {TARGET_LINES_PER_SECOND:,}): "
        f"{'yes' if lines / seconds >= TARGET_LINES_PER_SECOND else 'NO'}"
    )


def _start_company_api(port: int, orders: int) -> "subprocess.Popen[bytes]":
    """The fake company API in its own process, once it answers."""
    api = subprocess.Popen(
        [sys.executable, "-m", "mgrecs.ingest.fake_company_api", "--port", str(port)]
        + ["--orders", str(orders), "--customers", str(orders // 4), "--products", "5000"]
        + ["--token", "bench", "--legacy-every", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_healthy(f"http://127.0.0.1:{port}/healthz")
    return api


def _wait_healthy(url: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _stream(path: Path, lines: int, settings: Settings) -> None:
    samples: list[tuple[int, float]] = []
    marks = iter([lines * share // 10 for share in range(1, 11)])
    next_mark = next(marks)

    def on_progress(done: int) -> None:
        nonlocal next_mark
        while done >= next_mark:
            samples.append((done, resident_mib()))
            next_mark = next(marks, lines + 1)

    before = resident_mib()
    started = time.perf_counter()
    summary = await backfill_file(path, settings, on_progress)
    seconds = time.perf_counter() - started
    rate = summary.order_lines / seconds
    print(
        f"backfill: {summary.lines_read:,} lines, {summary.orders_published:,} orders "
        f"({summary.order_lines:,} order lines) published, "
        f"{summary.lines_rejected:,} lines rejected, in {seconds:.1f} s"
    )
    print(
        f"  = {rate:,.0f} order lines per second (target {TARGET_LINES_PER_SECOND:,}): "
        f"{'yes' if rate >= TARGET_LINES_PER_SECOND else 'NO'}"
    )
    print(f"resident memory before the file: {before:.0f} MiB; while streaming:")
    for done, mib in samples:
        print(f"  after {done:>9,} lines  {mib:6.0f} MiB")
    first, middle, last = samples[0][1], samples[len(samples) // 2 - 1][1], samples[-1][1]
    print(f"growth from 10 % to 100 % of the file: {last - first:+.0f} MiB")
    print(f"growth from 50 % to 100 % of the file: {last - middle:+.0f} MiB")
    if summary.quality is not None:
        print(f"data-quality report: {summary.quality.reason}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=420_000, help="about 2.4 lines each")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--keep", type=Path, help="write (or reuse) the file here")
    parser.add_argument(
        "--sync-orders", type=int, default=100_000, help="orders for the connector run, 0: skip"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="mgbench-ingest"))
    path = args.keep or workdir / "orders.csv"
    started = time.perf_counter()
    if path.exists():
        with path.open("rb") as handle:
            lines = sum(1 for _ in handle) - 1
        print(f"file: {path} ({lines:,} lines, reused)")
    else:
        lines = write_file(path, args.orders, args.customers, args.products)
        print(
            f"file: {lines:,} order lines, {args.orders:,} orders, "
            f"{path.stat().st_size / 2**20:.0f} MiB, "
            f"written in {time.perf_counter() - started:.0f} s"
        )
    broker = EmbeddedBroker().start()
    try:
        asyncio.run(stream(path, lines, broker.bootstrap, args.sync_orders))
    finally:
        broker.stop()
        if args.keep is None:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1:])
