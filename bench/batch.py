"""`make bench-batch`: the batch service end to end at scale: generated purchases loaded into
PostgreSQL, the real retrain, then the real sharded infer into a cache generation, once with
one `mgrecs-batch` worker process and once with two, printing each stage's seconds, the rows
per second written and the peak memory of every process.

Targets (issue 6): 1M customers, 100k products, 10M interactions: retrain + infer (top-25 per
customer, top-25 similar per product) + writing every row in <= 15 min, peak <= 8 GiB.

Stages, each measured in its own process (peak RSS is the process's VmHWM / ru_maxrss):
- load: `train_scale.generate`'s matrix (Zipf popularity, taste groups) becomes customers,
  products, orders (a customer's lines in baskets of BASKET lines over the last LOAD_DAYS, so
  every customer is active), order lines and what each customer bought (`customer_products`,
  aggregated from the two as migration 0019 does); binary COPY of integer columns into a staging
  table, then INSERT ... SELECT on the server (foreign-key triggers off for the load only).
- retrain: `mgrecs.batch.training.retrain` as a tick runs it (export, quality, evaluate,
  train, promote), with MGRECS_TRAIN_RECIPES and MGRECS_TRAIN_BUDGET_SECONDS from --recipes
  and --budget (default: the default recipe and a 30 s tuning budget: a routine run, not a
  recipe search).
- infer with W workers: W real `mgrecs-batch` processes on an embedded broker take the shard
  tasks this process publishes (`infer` with a dispatch, as a tick runs it); the split
  (shards, rows, seconds per worker) is read back from `cache_shards`.

Usage: python bench/batch.py [--customers N] [--products N] [--interactions N]
       [--shards N] [--recipes NAMES] [--budget SECONDS] [--workers 1,2] [--retrain-only]
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from train_scale import generate

from mgrecs.batch import training
from mgrecs.batch.inference import infer
from mgrecs.batch.steps import Steps
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.embedded import EmbeddedBroker, free_port
from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.settings import Settings
from support import migrated_database

TARGET_SECONDS = 15 * 60
TARGET_GIB = 8.0
BASKET = 4
"""Order lines per order (a customer's lines, in the generator's order)."""
LOAD_DAYS = 80
"""Orders are spread over the last LOAD_DAYS days: inside the default 90 active days."""
REGIONS = 4
CATEGORIES = 50
STAGING_COLUMNS = ("customer", "item", "basket", "line_no", "quantity", "age_seconds")
BENCH = Path(__file__).resolve().parent


def peak_gib() -> float:
    """This process's peak resident memory (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """This process's user + system CPU seconds, every thread (steadier than wall-clock
    seconds on a machine shared with other work)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def hwm_gib(pid: int) -> float:
    """Peak resident memory of a running process (VmHWM in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return 0.0


# -- load ---------------------------------------------------------------------------------


def binary_copy(columns: list[npt.NDArray[np.int64]]) -> bytes:
    """PostgreSQL's binary COPY format for int4 columns, built with numpy (10M rows in a
    second, where Python tuples would take a minute)."""
    n = columns[0].size
    fields = [("count", ">i2")]
    for index in range(len(columns)):
        fields += [(f"len{index}", ">i4"), (f"value{index}", ">i4")]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for index, column in enumerate(columns):
        rows[f"len{index}"] = 4
        rows[f"value{index}"] = column
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + (-1).to_bytes(2, "big", signed=True)


def order_lines(customers: int, products: int, interactions: int, seed: int) -> bytes:
    """The generated purchases as staging rows (binary COPY)."""
    matrix = generate(customers, products, interactions, seed).matrix
    rng = np.random.default_rng(seed + 1)
    customer = np.repeat(np.arange(customers, dtype=np.int64), np.diff(matrix.indptr))
    position = np.arange(matrix.nnz, dtype=np.int64) - matrix.indptr[customer]
    basket = position // BASKET
    # One time per (customer, basket): a hash of both picks the basket's age.
    age = (customer * 7919 + basket * 104729) % (LOAD_DAYS * 86_400)
    quantity = rng.choice(5, matrix.nnz, p=(0.62, 0.24, 0.09, 0.03, 0.02)) + 1
    return binary_copy(
        [customer, matrix.indices.astype(np.int64), basket, position % BASKET, quantity, age]
    )


LOAD_SQL = [
    "SET session_replication_role = replica",  # no FK triggers: the rows are consistent
    """INSERT INTO customers (customer_id, region, city)
       SELECT 'c' || lpad(n::text, 7, '0'), 'region-' || (n % $1), 'city-' || (n % 97)
       FROM generate_series(0, $2 - 1) n""",
    """INSERT INTO products (product_id, name, category, price, active)
       SELECT 'p' || lpad(n::text, 6, '0'), 'product ' || n, 'category-' || (n % $1),
              1 + (n % 200), (n * 7919) % 50 <> 0
       FROM generate_series(0, $2 - 1) n""",
    """INSERT INTO orders (order_id, customer_id, ordered_at, region)
       SELECT 'o' || customer || '-' || basket, 'c' || lpad(customer::text, 7, '0'),
              now() - make_interval(secs => min(age_seconds)), 'region-' || (customer % $1)
       FROM bench_lines GROUP BY customer, basket""",
    """INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
       SELECT 'o' || customer || '-' || basket, line_no, 'p' || lpad(item::text, 6, '0'),
              quantity, 1 + (item % 200)
       FROM bench_lines""",
    # What each customer bought, as the order writers keep it (mgrecs.store.orders) and
    # migration 0019 fills it: the database is the one production would have.
    """INSERT INTO customer_products (customer_id, product_id, orders, last_ordered_at)
       SELECT o.customer_id, oi.product_id, count(DISTINCT o.order_id), max(o.ordered_at)
       FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
       GROUP BY o.customer_id, oi.product_id
       ORDER BY o.customer_id, oi.product_id""",
]


async def load(url: str, customers: int, products: int, interactions: int, seed: int) -> None:
    started = time.perf_counter()
    payload = order_lines(customers, products, interactions, seed)
    generated = time.perf_counter() - started
    conn = await create_pool(url, min_size=1, max_size=1)
    async with conn.acquire() as c:
        await c.execute(
            "CREATE UNLOGGED TABLE bench_lines ("
            + ", ".join(f"{name} INTEGER" for name in STAGING_COLUMNS)
            + ")"
        )
        with tempfile.TemporaryDirectory(prefix="mgbench") as workdir:
            path = Path(workdir) / "lines.bin"
            path.write_bytes(payload)
            del payload
            await c.copy_to_table(
                "bench_lines", source=path, columns=list(STAGING_COLUMNS), format="binary"
            )
        copied = time.perf_counter() - started
        async with c.transaction():
            await c.execute(LOAD_SQL[0])
            await c.execute(LOAD_SQL[1], REGIONS, customers)
            await c.execute(LOAD_SQL[2], CATEGORIES, products)
            await c.execute(LOAD_SQL[3], REGIONS)
            await c.execute(LOAD_SQL[4])
            await c.execute(LOAD_SQL[5])
        await c.execute("DROP TABLE bench_lines")
        await c.execute("ANALYZE")
        orders = await c.fetchval("SELECT count(*) FROM orders")
        lines = await c.fetchval("SELECT count(*) FROM order_items")
        purchases = await c.fetchval("SELECT count(*) FROM customer_products")
    await conn.close()
    report(
        {
            "seconds": time.perf_counter() - started,
            "generate_seconds": generated,
            "copy_seconds": copied - generated,
            "orders": orders,
            "lines": lines,
            "purchases": purchases,
        }
    )


# -- retrain ------------------------------------------------------------------------------


async def retrain(url: str) -> None:
    """The retrain job in this process (settings from the environment)."""
    settings = Settings(database_url=url)
    pool = await create_pool(url)
    started, cpu = time.perf_counter(), cpu_seconds()
    steps = Steps(pool)
    version = await training.retrain(pool, settings, steps)
    await pool.close()
    report(
        {
            "seconds": time.perf_counter() - started,
            "cpu_seconds": cpu_seconds() - cpu,
            "version": version.version,
            "recipe": version.metrics["recipe"],
            "params": version.metrics["params"],
            "steps": {step["step"]: step["seconds"] for step in steps.done},
            "users": version.n_users,
            "items": version.n_items,
        }
    )


def report(result: dict[str, Any]) -> None:
    """A stage's result, as the last line of its output, for the parent."""
    print(json.dumps({**result, "peak_gib": peak_gib()}, default=str), flush=True)


def run_stage(stage: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`stage` in a child process; returns its result line."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "batch.py"), "--stage", stage, *args],
        check=True,
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# -- infer --------------------------------------------------------------------------------


@dataclass
class Workers:
    """`count` real `mgrecs-batch` processes (both consumers, their own metrics port)."""

    count: int
    env: dict[str, str]
    logs: list[Path]
    processes: list[subprocess.Popen[bytes]]

    @classmethod
    def start(cls, count: int, env: dict[str, str], logs: Path) -> "Workers":
        batch = Path(sys.executable).with_name("mgrecs-batch")
        processes = []
        paths = [logs / f"worker-{count}-{n}.log" for n in range(count)]
        for path in paths:
            log = path.open("ab")
            processes.append(
                subprocess.Popen(
                    [str(batch)],
                    env={
                        **os.environ,
                        **env,
                        "MGRECS_BATCH_METRICS_PORT": str(free_port()),
                    },
                    stdout=log,
                    stderr=log,
                )
            )
        return cls(count, env, paths, processes)

    def assigned(self) -> list[int]:
        """`infer-shards` partitions each worker holds now, from aiokafka's log lines."""
        held = []
        for path in self.logs:
            lines = [
                line
                for line in path.read_text(errors="replace").splitlines()
                if "infer-shards" in line and "newly assigned" in line
            ]
            held.append(lines[-1].count("partition=") if lines else 0)
        return held

    async def ready(self, partitions: int) -> float:
        """Wait until the group has settled: every worker holds some of the topic's
        partitions and together all of them (so no rebalance is due); returns seconds."""
        started = time.perf_counter()
        while True:
            held = self.assigned()
            if min(held) > 0 and sum(held) == partitions:
                return time.perf_counter() - started
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"a worker exited; see {self.logs}")
            await asyncio.sleep(0.2)

    def stop(self) -> dict[int, float]:
        """Peak memory of each worker (read before it exits), then SIGTERM and wait."""
        peaks = {p.pid: hwm_gib(p.pid) for p in self.processes}
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        return peaks


SPLIT = """
SELECT worker, count(*) AS shards, sum(users) AS users, sum(products) AS products,
       sum(seconds) AS seconds
FROM cache_shards WHERE generation = $1 GROUP BY worker ORDER BY worker
"""


async def infer_with(settings: Settings, workers: Workers) -> dict[str, Any]:
    """One infer run (as an infer tick runs it) with these workers taking the shards."""
    pool = await create_pool(settings.database_url)
    tick_worker = BatchWorker(settings)
    await tick_worker.broker.connect()  # its publisher only: no subscriber starts
    dispatch = tick_worker._dispatch  # a tick's own
    try:
        started = time.perf_counter()
        steps = Steps(pool)
        summary = await infer(pool, settings, steps, dispatch=dispatch)
        seconds = time.perf_counter() - started
        split = [dict(row) for row in await pool.fetch(SPLIT, summary.generation)]
        rows = summary.users + summary.products
        aggregates = await pool.fetchval(
            "SELECT count(*) FROM region_product_aggregates_rows WHERE generation = $1",
            summary.generation,
        )
    finally:
        await tick_worker.broker.stop()
        await pool.close()
        peaks = workers.stop()  # also when the run failed: no worker outlives the bench
    return {
        "seconds": seconds,
        "steps": {step["step"]: step["seconds"] for step in steps.done},
        "users": summary.users,
        "products": summary.products,
        "aggregates": aggregates,
        "rows_per_second": rows / seconds,
        "split": split,
        "worker_peaks": list(peaks.values()),
    }


# -- the whole run -------------------------------------------------------------------------


def show(label: str, seconds: float, peak: float, extra: str = "") -> None:
    print(f"{label:<40} {seconds:8.1f} s   peak RSS {peak:5.2f} GiB  {extra}", flush=True)


async def bench(args: argparse.Namespace) -> None:
    print(
        f"{args.customers:,} customers, {args.products:,} products, "
        f"{args.interactions:,} interactions; {args.shards} shards; recipes {args.recipes}, "
        f"tuning budget {args.budget:.0f} s",
        flush=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="mgbench-batch"))
    broker = EmbeddedBroker(log_path=logs / "broker.log").start()
    try:
        async with migrated_database("mgrecs_bench_batch") as url:
            env = {
                "MGRECS_ENV": "development",  # unsecured, on this machine
                "MGRECS_DATABASE_URL": url,
                "MGRECS_KAFKA_BOOTSTRAP": broker.bootstrap,
                "MGRECS_TOPIC_PREFIX": "bench-batch.",
                "MGRECS_ARTIFACT_DIR": str(logs / "artifacts"),
                "MGRECS_TRAIN_RECIPES": args.recipes,
                "MGRECS_TRAIN_BUDGET_SECONDS": str(args.budget),
                "MGRECS_INFER_SHARDS": str(args.shards),
                "MGRECS_RECOMMENDATIONS_PER_USER": "25",
                "MGRECS_SIMILAR_PER_PRODUCT": "25",
                "MGRECS_LOG_LEVEL": "INFO",
            }
            await run(args, url, env, logs)
    finally:
        broker.stop()
    print(f"(worker and broker logs in {logs})")


async def run(args: argparse.Namespace, url: str, env: dict[str, str], logs: Path) -> None:
    loaded = run_stage(
        "load",
        url,
        *(str(n) for n in (args.customers, args.products, args.interactions, args.seed)),
    )
    show(
        "load: generate, COPY, INSERT ... SELECT",
        loaded["seconds"],
        loaded["peak_gib"],
        f"{loaded['orders']:,} orders, {loaded['lines']:,} lines, "
        f"{loaded['purchases']:,} customer_products "
        f"(generate {loaded['generate_seconds']:.0f} s, COPY {loaded['copy_seconds']:.0f} s)",
    )
    trained = run_stage("retrain", url, env=env)
    show(
        f"retrain: {trained['recipe']} {trained['params']}",
        trained["seconds"],
        trained["peak_gib"],
        f"CPU {trained['cpu_seconds']:.0f} s (PostgreSQL's not counted)",
    )
    print(f"  steps {trained['steps']}", flush=True)
    if args.retrain_only:
        return
    settings = Settings.model_validate(
        {key.removeprefix("MGRECS_").lower(): value for key, value in env.items()}
    )
    await ensure_topics(settings)
    results: dict[int, dict[str, Any]] = {}
    for count in args.workers:
        workers = Workers.start(count, env, logs)
        joined = await workers.ready(topics.PARTITIONS[topics.INFER_SHARDS])
        print(f"  {count} worker(s) started and joined in {joined:.1f} s", flush=True)
        result = await infer_with(settings, workers)
        results[count] = result
        show(
            f"infer with {count} worker(s)",
            result["seconds"],
            max(result["worker_peaks"]),
            f"{result['users']:,} user rows + {result['products']:,} product rows, "
            f"{result['rows_per_second']:,.0f} rows/s; {result['aggregates']:,} region aggregates",
        )
        print(f"  steps {result['steps']}", flush=True)
        for worker in result["split"]:
            print(
                f"  {worker['worker']}: {worker['shards']} shards, {worker['users']:,} users, "
                f"{worker['products']:,} products, {worker['seconds']:.1f} s in shards",
                flush=True,
            )
    print(f"bench process peak RSS {peak_gib():.2f} GiB (infer job: start, dispatch, wait, drift)")
    first = results[args.workers[0]]
    total = trained["seconds"] + first["seconds"]
    peak = max(trained["peak_gib"], *first["worker_peaks"], peak_gib())
    print(
        f"targets: retrain + infer ({args.workers[0]} worker) {total:.0f} s <= {TARGET_SECONDS}: "
        f"{'yes' if total <= TARGET_SECONDS else 'NO'}; peak {peak:.2f} GiB <= {TARGET_GIB:.0f}: "
        f"{'yes' if peak <= TARGET_GIB else 'NO'}"
    )
    if len(results) > 1:
        counts = sorted(results)
        ratio = results[counts[0]]["seconds"] / results[counts[-1]]["seconds"]
        print(f"infer {counts[0]} worker(s) / {counts[-1]} workers: {ratio:.2f}x")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stage", choices=["load", "retrain"], help=argparse.SUPPRESS)
    parser.add_argument("stage_args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument(
        "--shards", type=int, default=8, help="MGRECS_INFER_SHARDS (more than workers: evens out)"
    )
    parser.add_argument("--recipes", default="rp3beta", help="MGRECS_TRAIN_RECIPES")
    parser.add_argument("--budget", type=float, default=30.0, help="tuning budget, seconds")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="worker counts to run the infer with, in order",
    )
    parser.add_argument(
        "--retrain-only", action="store_true", help="stop after the retrain (no infer runs)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.stage == "load":
        url, customers, products, interactions, seed = args.stage_args
        asyncio.run(load(url, int(customers), int(products), int(interactions), int(seed)))
    elif args.stage == "retrain":
        asyncio.run(retrain(args.stage_args[0]))
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main(sys.argv[1:])
