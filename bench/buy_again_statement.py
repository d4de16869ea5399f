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
this checkout's for every customer (the columns both have: the same purchases, orders and
dates, the arrays' order aside: the ranking does not depend on it).

With `--compare-with REV --api-rounds N`, two api processes (one worker each) then serve the
same database: REV's (its services/api/src and libs/store/src) and this checkout's. The
buy-again answers of `--answers` customers are compared (the JSON, less the cached list's
age, which the clock moves), then each API is offered buy-again and `/recommendations` at
`--rate` for `--seconds`, N rounds, the order alternating, with the API process's CPU time
per answer.

With `--compare-with REV --writes`, the cost of keeping `customer_products` is measured
instead: the shop's orders are written twice, in chunks of 500 as the tracker batches them,
into two fresh databases, one by REV's `write_orders` and one by this checkout's, chunk by
chunk alternately; the backend's and this process's CPU time per chunk. With
`--corrected SHARE` that share of the orders is then sent again, corrected (a line fewer,
or cancelled, a day later), and the corrections are measured apart.
"""

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from api_latency import _answered, _cpu_seconds, _offer, revision_sources, start_api

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.cli.processes import stop_all
from mgrecs.common.db import create_pool
from mgrecs.common.schemas import OrderEvent
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


def module_of(revision: str, path: str) -> dict[str, Any]:
    """The names module `path` defines at revision `revision` (run against this checkout's
    imports, which it shares)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:{path}"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    namespace: dict[str, Any] = {}
    exec(compile(source, f"{revision}:{path}", "exec"), namespace)
    return namespace


def statement_of(revision: str) -> str:
    """`BUY_AGAIN` as revision `revision` defines it."""
    return str(module_of(revision, "libs/store/src/mgrecs/store/repurchase.py")["BUY_AGAIN"])


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


async def per_execution(
    conn: asyncpg.Connection,
    pid: int,
    statement: asyncpg.prepared_stmt.PreparedStatement,
    params: list[tuple[Any, ...]],
) -> float:
    """µs of backend CPU per execution of `statement` over `params`."""
    before = _cpu_seconds(pid)
    for args in params:
        await statement.fetch(*args)
    return (_cpu_seconds(pid) - before) * 1e6 / len(params)


def as_compared(row: asyncpg.Record, columns: set[str]) -> tuple[Any, ...]:
    """`columns` of a row (those two statements share), its aligned purchase arrays as a
    sorted list of tuples (their order is free), less the cached list's age (the clock
    moves) and when the figures were fitted (one statement names them, one holds them)."""
    arrays = [row[name] or [] for name in ARRAYS if name in columns]
    skipped = {*ARRAYS, "age_seconds", "fitted_at"}
    rest = tuple(row[k] for k in sorted(columns - skipped))
    return (sorted(zip(*arrays, strict=True)), rest)


def writer_of(revision: str) -> Callable[[asyncpg.Pool, Sequence[OrderEvent]], Awaitable[None]]:
    """`write_orders` as revision `revision` defines it."""
    return module_of(revision, "libs/store/src/mgrecs/store/orders.py")["write_orders"]  # type: ignore[no-any-return]


async def compare_writes(server_url: str, args: argparse.Namespace) -> None:
    """REV's writer and this checkout's, the same chunks alternately into two databases."""
    data = generate(seed=11, customers=args.customers, products=args.products, orders=args.orders)
    rng = random.Random(5)
    corrections = [
        order.model_copy(
            update={"updated_at": order.ordered_at + timedelta(days=1)}
            | ({"lines": order.lines[:-1]} if len(order.lines) > 1 else {"status": "cancelled"})
        )
        for order in rng.sample(data.orders, round(args.corrected * len(data.orders)))
    ]
    writers = {
        f"at {args.compare_with}": writer_of(args.compare_with),
        "this checkout": write_orders,
    }
    pools: dict[str, tuple[asyncpg.Pool, int]] = {}
    for n, label in enumerate(writers):
        url = await create_database(server_url, f"{args.database}_writes{n}")
        await migrate_async(url)
        pool = await create_pool(url, max_size=1)  # one backend: its CPU time is the writes'
        pools[label] = (pool, await pool.fetchval("SELECT pg_backend_pid()"))
    try:
        for kind, messages in (("orders", data.orders), ("corrections", corrections)):
            if messages:
                await write_alternately(writers, pools, kind, messages)
    finally:
        for pool, _ in pools.values():
            await pool.close()


async def write_alternately(
    writers: dict[str, Callable[[asyncpg.Pool, Sequence[OrderEvent]], Awaitable[None]]],
    pools: dict[str, tuple[asyncpg.Pool, int]],
    kind: str,
    messages: Sequence[OrderEvent],
) -> None:
    """`messages` in chunks, each by every writer, the order alternating; CPU per chunk."""
    server: dict[str, float] = dict.fromkeys(writers, 0.0)
    client: dict[str, float] = dict.fromkeys(writers, 0.0)
    wall: dict[str, float] = dict.fromkeys(writers, 0.0)
    for number, start in enumerate(range(0, len(messages), WRITE_CHUNK)):
        chunk = messages[start : start + WRITE_CHUNK]
        for label in list(writers) if number % 2 == 0 else list(writers)[::-1]:
            pool, pid = pools[label]
            before = (_cpu_seconds(pid), time.process_time(), time.perf_counter())
            await writers[label](pool, chunk)
            server[label] += _cpu_seconds(pid) - before[0]
            client[label] += time.process_time() - before[1]
            wall[label] += time.perf_counter() - before[2]
    chunks = -(-len(messages) // WRITE_CHUNK)
    print(f"{len(messages)} {kind} in {chunks} chunks of {WRITE_CHUNK}, ms per chunk:")
    for label in writers:
        print(
            f"  {label}: PostgreSQL CPU {1e3 * server[label] / chunks:.1f}, this process's CPU"
            f" {1e3 * client[label] / chunks:.1f}, wall {1e3 * wall[label] / chunks:.1f}"
        )


def answer(base: str, customer: str) -> object:
    """A buy-again answer's JSON, less what the clock moves."""
    body = httpx.get(f"{base}/v1/users/{customer}/buy-again", timeout=30).json()
    body.pop("cache_age_seconds", None)
    return body


def compare_apis(url: str, customers: list[str], args: argparse.Namespace) -> None:
    """REV's api and this checkout's, side by side: the same answers? CPU per answer?"""
    apis = {
        f"at {args.compare_with}": start_api(url, revision_sources(args.compare_with)),
        "this checkout": start_api(url, None),
    }
    try:
        sample = customers[: args.answers]
        (_, old), (_, new) = apis.values()
        differing = [c for c in sample if answer(old, c) != answer(new, c)]
        print(f"answers compared: {len(sample)}, differing: {len(differing)} {differing[:5]}")
        paths_dir = Path(tempfile.mkdtemp(prefix="mgload"))
        paths = {}
        for endpoint, suffix in (("buy-again", "buy-again"), ("user", "recommendations")):
            paths[endpoint] = paths_dir / f"{endpoint}.txt"
            lines = [f"/v1/users/{c}/{suffix}" for c in customers]
            paths[endpoint].write_text("\n".join(lines) + "\n")
        for _, base in apis.values():  # warm: connections, prepared statements
            for path in paths.values():
                _offer(base, path, args.rate / 2, 2)
        cpu: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.api_rounds):
            for endpoint, path in paths.items():
                order = list(apis.items()) if round_ % 2 == 0 else list(apis.items())[::-1]
                for label, (api, base) in order:
                    assert api.process is not None
                    started = _cpu_seconds(api.process.pid)
                    step = _offer(base, path, args.rate, args.seconds)
                    used = _cpu_seconds(api.process.pid) - started
                    cpu.setdefault((endpoint, label), []).append(1e3 * used / _answered(step))
                    print(
                        f"  round {round_ + 1} {endpoint:<9} {label:<16} rps {step['rps']:7.1f}"
                        f"  p50 {step['p50']:6.2f} ms  p99 {step['p99']:7.2f} ms"
                        f"  errors {step['errors']}  CPU {cpu[(endpoint, label)][-1]:.3f} ms"
                        f"/answer  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        print("API CPU ms per answer (median of the rounds):")
        for (endpoint, label), values in cpu.items():
            rounds = ", ".join(f"{v:.3f}" for v in values)
            print(f"  {endpoint} {label}: {statistics.median(values):.3f} ({rounds})")
    finally:
        stop_all([api for api, _ in apis.values()])


async def run(args: argparse.Namespace) -> None:
    server_url = os.environ["MGRECS_BENCH_DATABASE_URL"]
    if args.writes:
        await compare_writes(server_url, args)
        return
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
            shared = {a.name for a in old.get_attributes()} & {a.name for a in new.get_attributes()}
            differing = [
                c
                for c in customers
                if as_compared(await old.fetchrow(c, RECIPE), shared)
                != as_compared(await new.fetchrow(c, RECIPE), shared)
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
    if args.compare_with and args.api_rounds:
        await asyncio.to_thread(compare_apis, url, customers, args)


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
    parser.add_argument("--writes", action="store_true", help="compare the order writers")
    parser.add_argument("--corrected", type=float, default=0.0, help="with --writes")
    parser.add_argument("--api-rounds", type=int, default=0, help="compare the two APIs too")
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--artifact-dir", default="/tmp/mgrecs-bench-buy-again")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
