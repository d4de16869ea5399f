"""The `served` table on the real database: a redelivered answer is stored once, each day's
rows land in that day's partition, and retention drops whole days before the cutoff."""

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from mgrecs.common.served import ServedList
from mgrecs.store.served import drop_before, partition_name, write_served

NOW = datetime.now(UTC).replace(microsecond=0)


def answer(served_id: str, served_at: datetime, **fields: object) -> ServedList:
    values: dict[str, object] = {
        "served_id": served_id,
        "served_at": served_at,
        "endpoint": "user",
        "customer_id": "C1",
        "product_ids": ["P1", "P2", "P3"],
        "source": "cache",
    }
    values.update(fields)
    return ServedList.model_validate(values)


async def partitions(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'served'"
    )
    return {row["relname"] for row in rows}


async def test_a_redelivered_answer_is_stored_once_in_its_days_partition(
    pool: asyncpg.Pool,
) -> None:
    first = answer("a1", NOW, rule_ids=[3, 12], experiment_id="e", arm="b", region="north")
    await write_served(pool, [first, answer("a2", NOW - timedelta(days=2), product_ids=[])])
    await write_served(pool, [first])

    rows = await pool.fetch("SELECT * FROM served ORDER BY served_at DESC")
    assert [row["served_id"] for row in rows] == ["a1", "a2"]
    assert rows[0]["product_ids"] == ["P1", "P2", "P3"]
    assert rows[0]["rule_ids"] == [3, 12]
    assert (rows[0]["region"], rows[0]["arm"]) == ("north", "b")
    assert rows[1]["product_ids"] == []
    stored_in = await pool.fetchval(
        "SELECT tableoid::regclass::text FROM served WHERE served_id = 'a1'"
    )
    assert stored_in == partition_name(NOW.date())


async def test_retention_drops_whole_days_before_the_cutoff(pool: asyncpg.Pool) -> None:
    days = [NOW - timedelta(days=n) for n in (0, 3, 10)]
    await write_served(pool, [answer(f"a{n}", day) for n, day in enumerate(days)])

    dropped = await drop_before(pool, (NOW - timedelta(days=5)).date())

    assert dropped == [partition_name(days[2].date())]
    assert await pool.fetchval("SELECT count(*) FROM served") == 2
    assert partition_name(days[1].date()) in await partitions(pool)


async def test_a_day_already_in_the_default_partition_stays_there(pool: asyncpg.Pool) -> None:
    day = NOW - timedelta(days=1)
    await pool.execute(
        "INSERT INTO served (served_id, served_at, endpoint, product_ids, source)"
        " VALUES ('old', $1, 'region', '{}', 'cache')",
        day,
    )
    await write_served(pool, [answer("new", day)])

    assert await pool.fetchval("SELECT count(*) FROM served_default") == 2
    await drop_before(pool, date.today() + timedelta(days=1))
    assert await pool.fetchval("SELECT count(*) FROM served") == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"endpoint": "user", "customer_id": None}, "customer_id"),
        ({"experiment_id": "e"}, "experiment_id"),
        ({"product_ids": ["P\x00"]}, "product_ids"),
        ({"rule_ids": [0]}, "rule_ids"),
    ],
)
def test_a_malformed_answer_is_refused_naming_the_field(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        answer("x", NOW, **fields)
