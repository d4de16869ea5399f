"""`make bench-tracker`: order lines from the broker into PostgreSQL and the engine, with
both tracker sinks running as `deploy/compose.yml` runs them: one process per sink, the
events process at niceness 10 (`--one-process`: a single `mgrecs-tracker --sink all`).

Generated orders (`mgrecs.ingest.sample_data`) are serialised first, then published to an
embedded broker (Tansu, the one `make demo` runs) at `--rate` order lines per second (0: as
fast as the producer goes; the default, 14,000, offers more than the 12,000 bar, so a rate
the sinks read is theirs and not the publisher's, which falls a little short of what it is
asked) while the tracker consumes them; the engine service
(`mgrecs-engine`, its own process) is the PutEvents target. One warm-up order goes first, so
the clock starts with the consumer groups joined. Every half second the run samples the rows
in `order_items` and each group's lag (offsets acknowledged to the producer minus the
group's committed offsets). End-to-end latency is per order, from the moment it was handed
to the producer to `orders.ingested_at` (set by PostgreSQL when the tracker's transaction
began). Uses the embedded PostgreSQL unless MGRECS_BENCH_DATABASE_URL names a server.
Printed against issue 18's bars: lines/s into PostgreSQL and into the engine (12,000 each),
the events sink's lag when the publish ends (in seconds of orders, 2 s), and each process's
CPU per 1,000 lines (less sensitive than rates to what else runs on the machine).

With `--backlog` every order is published before the trackers start: the drain rate, without
the publisher competing for the machine's cores.

Usage: python bench/tracker.py [--orders N] [--customers N] [--products N] [--rate LINES/S]
       [--one-process] [--events-nice N] [--db-consumers N] [--backlog]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from mgrecs.cli.embedded import EmbeddedBroker, free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common import topics
from mgrecs.common.kafka import Keyed, ensure_topics, partition_of, send_batched
from mgrecs.common.personalize import signed_headers
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from support import migrated_database

TARGET_LINES_PER_SECOND = 12_000
"""Issue 18's bar, from the broker into PostgreSQL and into the engine, in the same run."""
TARGET_LAG_SECONDS = 2.0
"""Issue 18's bar: the events sink's lag when the publish ends, in seconds of orders."""
GROUPS = ("mgrecs-tracker-db", "mgrecs-tracker-events")
SAMPLE_SECONDS = 0.5
PUBLISH_TICK_SECONDS = 0.05
MAX_TICK_MESSAGES = 5_000
TIMEOUT_SECONDS = 900.0


@dataclass
class Sample:
    at: float
    rows: int
    lag: dict[str, int]


class CpuMeter:
    """CPU seconds each part of the run used since `start`: who takes the cores while the
    sinks work. PostgreSQL's figure is the backends connected to the bench's database; the
    server's other processes (WAL writer, checkpointer, other databases' backends) are
    counted apart, as they may be busy for others on a shared server."""

    def __init__(self, parts: dict[str, int], pool: asyncpg.Pool) -> None:
        self._names = {pid: name for name, pid in parts.items()}
        self._pool = pool
        self._start: dict[int, float] = {}
        self._started = 0.0

    async def _read(self) -> dict[int, tuple[str, float]]:
        ours = {
            row["pid"]
            for row in await self._pool.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
        seconds = {}
        for process in psutil.process_iter(["name"]):
            if process.pid in self._names:
                part = self._names[process.pid]
            elif process.info["name"] == "postgres":
                part = "postgresql" if process.pid in ours else "postgresql, other"
            else:
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:  # gone meanwhile
                continue
            seconds[process.pid] = (part, times.user + times.system)
        return seconds

    async def start(self) -> None:
        self._start = {pid: used for pid, (_, used) in (await self._read()).items()}
        self._started = time.time()

    async def used(self) -> "CpuReading":
        by_part: dict[str, float] = {}
        for pid, (part, seconds) in (await self._read()).items():
            by_part[part] = by_part.get(part, 0.0) + seconds - self._start.get(pid, 0.0)
        return CpuReading(time.time() - self._started, by_part)


@dataclass
class CpuReading:
    wall: float
    by_part: dict[str, float]

    def show(self, label: str, lines: int) -> None:
        total = sum(self.by_part.values())
        print(
            f"CPU {label}: {total:.1f} s in {self.wall:.1f} s wall "
            f"({total / self.wall:.2f} cores busy), per 1,000 lines:"
        )
        for part, seconds in sorted(self.by_part.items(), key=lambda item: -item[1]):
            print(f"  {part:<16} {seconds:7.1f} s  {seconds / lines * 1000:6.3f} s")


@dataclass
class Run:
    messages: list[tuple[bytes, bytes, str, int]]
    """(key, value, order id, lines) of every order, serialised before the clock starts."""
    lines: int
    warmup: tuple[bytes, bytes, str, int]
    """Sent alone first: the clock starts once both consumer groups have handled it."""
    published_at: dict[str, float] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    published: float = 0.0
    """When the last order was acknowledged by the broker."""
    started: float = 0.0
    """The clock's origin: the first publish, or with --backlog the trackers' start."""
    base: int = 0
    """Lines in PostgreSQL and the engine before the clock started (the warm-up order)."""
    cpu_in_db: CpuReading | None = None
    """CPU used from the start until every line was in PostgreSQL."""
    cpu_landed: CpuReading | None = None
    """... until every event was in the engine too."""
    partitions: list[int] = field(default_factory=list)
    """Each message's partition, computed before the clock starts (as ingest's threads do)."""
    ends: dict[int, int] = field(default_factory=dict)
    """Partition -> offset after the last acknowledged message (the embedded broker's
    ListOffsets answers per record batch, not per record, so the acks are the truth)."""


def prepare(args: argparse.Namespace) -> Run:
    started = time.perf_counter()
    data = generate(seed=13, customers=args.customers, products=args.products, orders=args.orders)
    messages = [
        (o.key, o.model_dump_json().encode(), o.order_id, len(o.lines)) for o in data.orders
    ]
    warmup, messages = messages[0], messages[1:]
    partitions = list(range(topics.PARTITIONS[topics.ORDERS]))
    lines = sum(n for *_, n in messages)
    print(
        f"data: {len(messages):,} orders, {lines:,} lines, {args.customers:,} customers, "
        f"{args.products:,} products, generated in {time.perf_counter() - started:.1f} s"
    )
    return Run(
        messages, lines, warmup, partitions=[partition_of(key, partitions) for key, *_ in messages]
    )


async def warm_up(run: Run, settings: Settings, pool: asyncpg.Pool, engine_url: str) -> None:
    """Publish one order and wait until it is in PostgreSQL and the engine: the groups have
    joined and every connection is open before the clock starts."""
    key, value, _, lines = run.warmup
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        ack = await producer.send_and_wait(topics.topic(topics.ORDERS, settings), value, key=key)
    finally:
        await producer.stop()
    run.ends[ack.partition] = ack.offset + 1
    run.base = lines
    deadline = time.monotonic() + TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            rows = await pool.fetchval("SELECT count(*) FROM order_items")
            events = (await engine_stats(client, engine_url))["events_received"]
            if rows == events == lines:
                return
            await asyncio.sleep(0.1)
    raise TimeoutError("the warm-up order did not land")


async def publish(run: Run, settings: Settings, rate: float) -> None:
    """Send every order, paced to `rate` lines per second, recording when each was sent.

    Every PUBLISH_TICK_SECONDS the orders due go out as one record batch per partition
    (`send_batched`, as ingest publishes), so the publisher takes little of the cores the
    tracker is measured on (a batch per message would cost the broker and the publisher
    several times more)."""
    topic = topics.topic(topics.ORDERS, settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        start = next_tick = time.time()
        sent_lines, next_message = 0, 0
        while next_message < len(run.messages):
            due = (time.time() - start) * rate if rate else float("inf")
            tick: list[Keyed] = []
            while next_message < len(run.messages) and sent_lines <= due:
                key, value, order_id, lines = run.messages[next_message]
                run.published_at[order_id] = time.time()
                tick.append(Keyed(run.partitions[next_message], key, value))
                sent_lines += lines
                next_message += 1
                if len(tick) >= MAX_TICK_MESSAGES:
                    break
            if tick:
                await asyncio.gather(*await send_batched(producer, topic, tick))
                for message in tick:
                    run.ends[message.partition] = run.ends.get(message.partition, 0) + 1
            if rate:
                next_tick += PUBLISH_TICK_SECONDS
                await asyncio.sleep(max(0.0, next_tick - time.time()))
        run.published = time.time()
    finally:
        await producer.stop()


async def sample(
    run: Run, settings: Settings, pool: asyncpg.Pool, meter: CpuMeter, done: asyncio.Event
) -> None:
    """Rows in `order_items` and each group's lag, every SAMPLE_SECONDS until `done`."""
    topic = topics.topic(topics.ORDERS, settings)
    readers = {
        group: AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{settings.topic_prefix}{group}",
            enable_auto_commit=False,
        )
        for group in GROUPS
    }
    for reader in readers.values():
        await reader.start()
    try:
        any_reader = next(iter(readers.values()))
        await any_reader.topics()
        partitions = [
            TopicPartition(topic, p) for p in any_reader.partitions_for_topic(topic) or ()
        ]
        while not done.is_set():
            lag = {}
            for group, reader in readers.items():
                committed = [await reader.committed(tp) or 0 for tp in partitions]
                lag[group] = sum(
                    max(0, run.ends.get(tp.partition, 0) - c)
                    for tp, c in zip(partitions, committed, strict=True)
                )
            rows = await pool.fetchval("SELECT count(*) FROM order_items") - run.base
            run.samples.append(Sample(time.time(), rows, lag))
            if rows >= run.lines and run.cpu_in_db is None:
                run.cpu_in_db = await meter.used()
            await asyncio.sleep(SAMPLE_SECONDS)
    finally:
        for reader in readers.values():
            await reader.stop()


async def wait_until_landed(run: Run, engine_url: str, trackers: list[ServiceProcess]) -> float:
    """When every line is in PostgreSQL and every event in the engine; fails on a timeout."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            for tracker in trackers:
                if not tracker.alive():
                    raise RuntimeError(f"{tracker.name} exited:\n{tracker.log_tail()}")
            latest = run.samples[-1] if run.samples else None
            if latest is not None and latest.rows >= run.lines and not any(latest.lag.values()):
                stats = await engine_stats(client, engine_url)
                if stats["events_received"] >= run.lines + run.base:
                    return time.time()
            await asyncio.sleep(SAMPLE_SECONDS)
    raise TimeoutError(f"not every line landed in {TIMEOUT_SECONDS:.0f} s")


def percentiles(label: str, seconds: list[float]) -> None:
    cuts = statistics.quantiles([s * 1000 for s in seconds], n=100, method="inclusive")
    print(
        f"{label:<34} p50={cuts[49]:8.1f} ms  p99={cuts[98]:8.1f} ms  "
        f"max={max(seconds) * 1000:8.1f} ms"
    )


async def report(run: Run, pool: asyncpg.Pool, landed: float, engine_url: str) -> None:
    first = run.started
    sent = min(run.published_at.values())
    print(
        f"published: {run.lines:,} lines in {run.published - sent:.1f} s "
        f"= {run.lines / (run.published - sent):,.0f} lines/s"
        + (" (all before the trackers started)" if first > run.published else "")
    )
    rows_at = [(s.at, s.rows) for s in run.samples]
    started = next((at for at, rows in rows_at if rows > 0), first)
    in_db = next((at for at, rows in rows_at if rows >= run.lines), landed)
    rate = run.lines / (in_db - first)
    print(
        f"into PostgreSQL: {run.lines:,} lines, start to last row {in_db - first:.1f} s "
        f"= {rate:,.0f} lines/s (target {TARGET_LINES_PER_SECOND:,}): "
        f"{'yes' if rate >= TARGET_LINES_PER_SECOND else 'NO'}"
    )
    low, high = run.lines // 10, run.lines * 9 // 10
    t_low = next(at for at, rows in rows_at if rows >= low)
    t_high = next((at for at, rows in rows_at if rows >= high), in_db)
    if t_high > t_low:
        print(f"  steady (10 % to 90 % of rows): {(high - low) / (t_high - t_low):,.0f} lines/s")
    print(f"  first row {started - first:.1f} s after the start")
    engine_rate = run.lines / (landed - first)
    print(
        f"into the engine: every line {landed - first:.1f} s after the start "
        f"= {engine_rate:,.0f} lines/s (target {TARGET_LINES_PER_SECOND:,}): "
        f"{'yes' if engine_rate >= TARGET_LINES_PER_SECOND else 'NO'}"
    )
    if first <= run.published:
        events_lag_at_publish_end(run, sent, landed)
    async with httpx.AsyncClient(timeout=10) as client:
        stats = await engine_stats(client, engine_url)
    print(
        f"engine: {stats['events_received'] - run.base:,} events accepted, "
        f"{stats['duplicate_events_ignored']:,} duplicates ignored"
    )
    if run.cpu_in_db is not None:
        run.cpu_in_db.show("until every line was in PostgreSQL", run.lines)
    if run.cpu_landed is not None:
        run.cpu_landed.show("until every event was in the engine too", run.lines)
    print("consumer lag (messages = orders) over the run:")
    step = max(1, len(run.samples) // 12)
    for s in run.samples[::step]:
        lags = "  ".join(f"{g.removeprefix('mgrecs-tracker-')}={n:>7,}" for g, n in s.lag.items())
        print(f"  t={s.at - first:6.1f} s  rows={s.rows:>9,}  lag {lags}")
    for group in GROUPS:
        print(f"  max lag {group}: {max(s.lag[group] for s in run.samples):,}")
    ingested = await pool.fetch(
        "SELECT order_id, extract(epoch FROM ingested_at) AS at FROM orders WHERE order_id <> $1",
        run.warmup[2],
    )
    latencies = [float(r["at"]) - run.published_at[r["order_id"]] for r in ingested]
    if first > run.published:
        print("end to end: not meaningful with --backlog (every order waited for the start)")
    else:
        percentiles("end to end, publish -> row (orders)", latencies)


def events_lag_at_publish_end(run: Run, sent: float, landed: float) -> None:
    """The events sink's lag at the first sample after the last order was acknowledged, in
    orders and in seconds of orders at the rate they were published."""
    after = next((s for s in run.samples if s.at >= run.published), None)
    if after is None:
        return
    orders_per_second = len(run.messages) / (run.published - sent)
    lag = after.lag["mgrecs-tracker-events"]
    seconds = lag / orders_per_second
    print(
        f"events lag at the end of the publish: {lag:,} orders = {seconds:.1f} s of orders "
        f"(target {TARGET_LAG_SECONDS:.0f} s): {'yes' if seconds <= TARGET_LAG_SECONDS else 'NO'}; "
        f"last event in the engine {landed - run.published:.1f} s after the last publish"
    )


async def engine_stats(client: httpx.AsyncClient, engine_url: str) -> dict[str, int]:
    """The engine's `/stats`, signed with the default key the bench's engine runs with."""
    url = f"{engine_url}/stats"
    settings = Settings()
    stats: dict[str, int] = (
        await client.get(url, headers=signed_headers(settings, "GET", url))
    ).json()
    return stats


async def bench(args: argparse.Namespace, run: Run, broker: EmbeddedBroker, url: str) -> None:
    settings = Settings(
        database_url=url, kafka_bootstrap=broker.bootstrap, topic_prefix="bench-tracker."
    )
    await ensure_topics(settings)
    engine_port = free_port()
    engine_url = f"http://127.0.0.1:{engine_port}"
    env = {
        "MGRECS_ENV": "development",  # unsecured, on this machine
        "MGRECS_DATABASE_URL": url,
        "MGRECS_KAFKA_BOOTSTRAP": broker.bootstrap,
        "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
        "MGRECS_ENGINE_PORT": str(engine_port),
        "MGRECS_PERSONALIZE_ENDPOINT_URL": engine_url,
        "MGRECS_LOG_LEVEL": "WARNING",
    }
    logs = Path(tempfile.mkdtemp(prefix="mgbench-tracker"))
    engine = ServiceProcess("engine", ["mgrecs-engine"], env, logs / "engine.log")
    trackers = [
        ServiceProcess(
            f"tracker-{sink}",
            ["mgrecs-tracker", "--sink", sink],
            {
                **env,
                "MGRECS_TRACKER_METRICS_PORT": str(free_port()),
                "MGRECS_TRACKER_NICE": str(args.events_nice if sink == "events" else 0),
                "MGRECS_TRACKER_DB_CONSUMERS": str(args.db_consumers),
            },
            logs / f"tracker-{sink}.log",
        )
        for sink in (("all",) if args.one_process else ("db", "events"))
    ]
    services = [engine, *trackers]
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        engine.start()
        await asyncio.to_thread(wait_healthy, f"{engine_url}/healthz", engine)
        if args.backlog:
            await publish(run, settings, 0)
            print(f"backlog of {run.lines:,} lines published; starting the tracker")
        for tracker in trackers:
            tracker.start()
            port = tracker.env["MGRECS_TRACKER_METRICS_PORT"]
            await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}/healthz", tracker)
        done = asyncio.Event()
        meter = CpuMeter(
            {
                **{s.name: s.process.pid for s in services if s.process is not None},
                "broker": broker.process.pid if broker.process is not None else -1,
                "bench (publisher)": os.getpid(),
            },
            pool,
        )
        if args.backlog:
            run.started = time.time()
            await meter.start()
            sampler = asyncio.create_task(sample(run, settings, pool, meter, done))
        else:
            await warm_up(run, settings, pool, engine_url)
            print(f"engine and tracker up (logs in {logs}); publishing at {args.rate} lines/s")
            sampler = asyncio.create_task(sample(run, settings, pool, meter, done))
            run.started = time.time()
            await meter.start()
            await publish(run, settings, args.rate)
        landed = await wait_until_landed(run, engine_url, trackers)
        run.cpu_landed = await meter.used()
        done.set()
        await sampler
        await report(run, pool, landed, engine_url)
    finally:
        stop_all(services)
        await pool.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=85_000, help="about 2.4 lines each")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=14_000, help="lines/s; 0 = full speed")
    parser.add_argument(
        "--events-nice", type=int, default=10, help="the events process's niceness (as deployed)"
    )
    parser.add_argument(
        "--db-consumers",
        type=int,
        default=Settings().tracker_db_consumers,
        help="consumers of the database sink in its process (MGRECS_TRACKER_DB_CONSUMERS)",
    )
    parser.add_argument(
        "--one-process", action="store_true", help="one `--sink all` process for both sinks"
    )
    parser.add_argument("--split", action="store_true", help="one process per sink (the default)")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="publish everything first, then start the tracker (drain rate, no publisher load)",
    )
    args = parser.parse_args(argv)
    run = prepare(args)
    broker = EmbeddedBroker().start()

    async def go() -> None:
        async with migrated_database("mgrecs_bench_tracker") as url:
            await bench(args, run, broker, url)

    try:
        asyncio.run(go())
    finally:
        broker.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
