"""Benchmark: what buy-again's statement (`repurchase.BUY_AGAIN`) costs PostgreSQL per
execution, against the cached list's (`cache.USER_LIST`, what `/recommendations` runs), on
`make bench-api`'s shop, as the backend's CPU time: what holds on a shared machine.

    MGRECS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/buy_again_statement.py --compare-with 1273c9c

Writes, trains and infers the shop of bench/api_latency.py (10,000 customers, 2,000
products, 50,000 orders) into database `--database` (kept: `--reuse` measures it again
without rebuilding), then runs each statement `--executions` times as a prepared statement
on one connection, over the customers in turn, `--rounds` rounds with the order alternating,
and prints the backend's CPU time (`/proc/<pg_backend_pid()>/stat`: the server must be on
this machine) per execution. With `--compare-with REV` the `BUY_AGAIN` of git revision REV
(libs/store/src/mgrecs/store/repurchase.py) is measured too, and its rows are compared with
this checkout's for every customer (the same purchases, orders, dates and statistics, the
arrays' order aside: the ranking does not depend on it).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from mgrecs.store.cache import USER_LIST
from mgrecs.store.databases import create_database
from mgrecs.store.model_versions import RECIPE
from mgrecs.store.orders import write_orders
from mgrecs.store.repurchase import BUY_AGAIN
from mgrecs.store.schema import migrate_async

REPO = Path(__file__).resolve().parent.parent
WRITE_CHUNK = 500
ARRAYS = ("product_ids", "orders", "last_at", "repeat_rates", "interval_days")


def statement_of(revision: str) -> str:
    """`BUY_AGAIN` as revision `revision` defines it (its module run against this checkout's
    imports, which it shares)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:libs/store/src/mgrecs/store/repurchase.py"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    namespace: dict[str, Any] = {}
    exec(compile(source, f"{revision}:repurchase.py", "exec"), namespace)
    return str(namespace["BUY_AGAIN"])


async def build(server_url: str, name: str, args: argparse.Namespace) -> str:
    """The shop written (through the tracker's writer), trained and inferred; its URL."""
    url = await create_database(server_url, name)
    await migrate_async(url)
    settings = Settings(database_url=url, artifact_dir=args.artifact_dir)
    data = generate(seed=11, customers=args.customers, products=args.products, orders=args.orders)
    pool = await create_pool(url)
    try:
        started = time.perf_counter()
        for start in range(0, len(data.orders), WRITE_CHUNK):
            await write_orders(pool, data.orders[start : start + WRITE_CHUNK])
        print(f"write orders: {time.perf_counter() - started:.1f} s")
        await retrain(pool, settings)
        await infer(pool, settings)
        await pool.execute("VACUUM ANALYZE")
    finally:
        await pool.close()
    return url


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of PostgreSQL backend `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def per_execution(
    conn: asyncpg.Connection,
    pid: int,
    statement: asyncpg.prepared_stmt.PreparedStatement,
    params: list[tuple[Any, ...]],
) -> float:
    """µs of backend CPU per execution of `statement` over `params`."""
    before = backend_cpu(pid)
    for args in params:
        await statement.fetch(*args)
    return (backend_cpu(pid) - before) * 1e6 / len(params)


def as_compared(row: asyncpg.Record) -> tuple[Any, ...]:
    """A row with its aligned arrays as a sorted list of tuples (their order is free), less
    the cached list's age (the clock moves)."""
    arrays = [row[name] or [] for name in ARRAYS]
    rest = tuple(v for k, v in row.items() if k not in (*ARRAYS, "age_seconds"))
    return (sorted(zip(*arrays, strict=True)), rest)


async def run(args: argparse.Namespace) -> None:
    server_url = os.environ["MGRECS_BENCH_DATABASE_URL"]
    if args.reuse:
        url = server_url.rsplit("/", 1)[0] + "/" + args.database
    else:
        url = await build(server_url, args.database, args)
    conn = await asyncpg.connect(url)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        customers = [
            r[0] for r in await conn.fetch("SELECT user_id FROM offline_user_recommendations")
        ]
        print(f"customers: {len(customers)}; load {os.getloadavg()[0]:.1f}")
        statements = {"buy-again": BUY_AGAIN, "cached list": USER_LIST}
        if args.compare_with:
            statements[f"buy-again at {args.compare_with}"] = statement_of(args.compare_with)
        prepared = {name: await conn.prepare(text) for name, text in statements.items()}
        if args.compare_with:
            old, new = prepared[f"buy-again at {args.compare_with}"], prepared["buy-again"]
            differing = [
                c
                for c in customers
                if as_compared(await old.fetchrow(c, RECIPE))
                != as_compared(await new.fetchrow(c, RECIPE))
            ]
            print(f"rows compared: {len(customers)}, differing: {len(differing)} {differing[:5]}")
        params = {
            name: [
                (c, RECIPE) if name.startswith("buy-again") else (c,)
                for c in (customers * (args.executions // len(customers) + 1))[: args.executions]
            ]
            for name in statements
        }
        for name, statement in prepared.items():  # warm: generic plans, caches
            for one in params[name][:200]:
                await statement.fetch(*one)
        figures: dict[str, list[float]] = {name: [] for name in statements}
        names = list(statements)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                figures[name].append(await per_execution(conn, pid, prepared[name], params[name]))
        print(
            f"µs of backend CPU per execution, {args.executions} executions x {args.rounds} rounds"
        )
        for name, values in figures.items():
            rounds = ", ".join(f"{v:.0f}" for v in values)
            print(f"  {name}: median {statistics.median(values):.0f} ({rounds})")
        print(f"load {os.getloadavg()[0]:.1f}")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="mgrecs_bench_buy_again")
    parser.add_argument("--reuse", action="store_true", help="measure the database as it is")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--executions", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--compare-with", help="git revision whose BUY_AGAIN to measure too")
    parser.add_argument("--artifact-dir", default="/tmp/mgrecs-bench-buy-again")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
