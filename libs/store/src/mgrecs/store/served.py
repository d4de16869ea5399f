"""What the api answered (`served`, partitioned by UTC day): written by the tracker's served
sink, read by attribution and online accuracy, pruned a day at a time by retention.

Writes are idempotent: one row per (served id, served at), a redelivered message is skipped.
The writer creates a day's partition before the first row of that day lands; rows of a day
without one (a partition that could not be created) land in `served_default`.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from mgrecs.common.served import ServedList

SEPARATOR = "\x1f"
"""Joins a list's product ids into one text for the batch insert; ids never contain control
characters (`mgrecs.common.schemas.ID_PATTERN`), so splitting it back is exact."""

INSERT_SERVED = """
INSERT INTO served (served_id, served_at, endpoint, customer_id, region, product_id,
                    product_ids, source, model_version, experiment_id, arm, rule_ids)
SELECT s.served_id, s.served_at, s.endpoint, s.customer_id, s.region, s.product_id,
       string_to_array(s.products, E'\\x1f'), s.source, s.model_version, s.experiment_id,
       s.arm, string_to_array(s.rules, ',')::bigint[]
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
     AS s (served_id, served_at, endpoint, customer_id, region, product_id, products, source,
           model_version, experiment_id, arm, rules)
ON CONFLICT (served_id, served_at) DO NOTHING
"""
"""One statement per batch (columns as arrays, each list's ids joined by `SEPARATOR`)."""

PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'served' AND c.relname <> 'served_default'
"""


def partition_name(day: date) -> str:
    """The partition holding `day`'s rows (UTC)."""
    return f"served_{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day of a partition named by `partition_name`, or None for any other table."""
    try:
        return datetime.strptime(name.removeprefix("served_"), "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


MISSING = "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL"
"""Of the partition names given, those that do not exist (a catalogue read, no lock)."""


async def ensure_partitions(pool: asyncpg.Pool, days: Iterable[date]) -> None:
    """Create the partitions of `days` that do not exist. Two writers racing create it once;
    a day whose rows already sit in `served_default` keeps using it (PostgreSQL refuses a
    partition the default holds rows of), which costs nothing but the pruning granularity."""
    by_name = {partition_name(day): day for day in days}
    for name in await pool.fetchval(f"SELECT array({MISSING})", list(by_name)):
        start = datetime.combine(by_name[name], time(), tzinfo=UTC)
        end = start + timedelta(days=1)
        statement = (
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF served "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        try:
            await pool.execute(statement)
        except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
            pass  # another writer created it between our check and our statement
        except asyncpg.CheckViolationError:
            pass  # rows of that day already landed in served_default


async def write_served(pool: asyncpg.Pool, lists: Sequence[ServedList]) -> None:
    """Insert the answers not stored yet, creating their days' partitions first."""
    if not lists:
        return
    await ensure_partitions(pool, {served.served_at.astimezone(UTC).date() for served in lists})
    columns: list[list[object]] = [[] for _ in range(12)]
    for served in lists:
        row = (
            served.served_id,
            served.served_at,
            served.endpoint,
            served.customer_id,
            served.region,
            served.product_id,
            SEPARATOR.join(served.product_ids),
            served.source,
            served.model_version,
            served.experiment_id,
            served.arm,
            ",".join(str(rule_id) for rule_id in served.rule_ids),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await pool.execute(INSERT_SERVED, *columns)


async def drop_before(pool: asyncpg.Pool, cutoff: date) -> list[str]:
    """Retention: drop the day partitions before `cutoff` and delete the default partition's
    rows before it. Returns the partitions dropped."""
    dropped = []
    for record in await pool.fetch(PARTITIONS):
        day = partition_day(record["relname"])
        if day is not None and day < cutoff:
            await pool.execute(f"DROP TABLE IF EXISTS {record['relname']}")
            dropped.append(record["relname"])
    start = datetime.combine(cutoff, time(), tzinfo=UTC)
    await pool.execute("DELETE FROM served_default WHERE served_at < $1", start)
    return sorted(dropped)
