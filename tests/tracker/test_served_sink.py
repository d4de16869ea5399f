"""The tracker's served sink (topic `served`), on the real broker and database: answers land
in `served` once, poison goes to `served.dlq` with its reason and the sink goes on, and
retention drops the days past `served_retention_days`."""

import json
from datetime import UTC, date, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store.served import partition_name, write_served
from mgrecs.tracker.served_sink import ServedSink
from support.dead_letters import read_dead_letters, valid_and_each_poison_dead_lettered_once
from support.helpers import eventually, running
from support.orders_topic import caught_up
from support.poison_inputs import raw_documents

NOW = datetime.now(UTC).replace(microsecond=0)


def answer(served_id: str, served_at: datetime = NOW, **fields: object) -> ServedList:
    values: dict[str, object] = {
        "served_id": served_id,
        "served_at": served_at,
        "endpoint": "user",
        "customer_id": "C1",
        "product_ids": ["P1", "P2"],
        "source": "cache",
    }
    return ServedList.model_validate(values | fields)


async def publish(
    settings: Settings, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send `messages` in order; where each landed (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        topic = topics.topic(topics.SERVED, settings)
        sent = [await producer.send_and_wait(topic, value, key=key) for key, value in messages]
        return [(metadata.partition, metadata.offset) for metadata in sent]
    finally:
        await producer.stop()


def as_records(lists: list[ServedList]) -> list[tuple[bytes | None, bytes]]:
    return [((s.customer_id or "").encode() or None, s.model_dump_json().encode()) for s in lists]


async def served_caught_up(settings: Settings) -> bool:
    return await caught_up(settings, ServedSink.group, topics.SERVED)


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    return await read_dead_letters(
        settings.kafka_bootstrap, topics.topic(topics.SERVED_DLQ, settings)
    )


async def stored_ids(pool: asyncpg.Pool) -> list[str]:
    return [r["served_id"] for r in await pool.fetch("SELECT served_id FROM served ORDER BY 1")]


async def test_answers_land_once_and_poison_is_dead_lettered_with_its_reason(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    good = [
        answer("s1", region="north", rule_ids=[4], experiment_id="ab1", arm="control"),
        answer("s2", endpoint="region", customer_id=None, region="north", source="aggregates"),
        answer("s3", NOW - timedelta(days=1), endpoint="similar", product_id="P9"),
    ]
    poison = [
        (b"k1", b"{not json", "not JSON"),
        (b"k2", json.dumps({"served_id": "x"}).encode(), "Field required"),
        (b"k3", answer("s9").model_dump_json().replace('"user"', '"nope"').encode(), "endpoint"),
        (b"k4", json.dumps(answer("s8").model_dump(mode="json") | {"arm": "a"}).encode(), "arm"),
        (b"k5", b"\xff\xfe", "not JSON"),
        # Past PostgreSQL's bigint: refused as invalid, not left to the database (Hypothesis).
        (
            b"k6",
            json.dumps(answer("s7").model_dump(mode="json") | {"rule_ids": [2**63]}).encode(),
            "rule_ids",
        ),
    ]
    records = as_records(good)
    await publish(settings, [records[0], *[(k, v) for k, v, _ in poison], *records[1:]])
    async with running(ServedSink(settings)) as sink:
        await eventually(lambda: served_caught_up(settings))
        assert sink.stopping.error is None
        reasons = {letter.key: letter.reason for letter in await dead_letters(settings)}
        assert len(reasons) == len(poison)
        for key, _, fragment in poison:
            assert fragment in reasons[key.decode()], reasons[key.decode()]
        assert await stored_ids(pool) == ["s1", "s2", "s3"]
        row = await pool.fetchrow("SELECT * FROM served WHERE served_id = 's1'")
        assert (row["region"], list(row["rule_ids"]), row["arm"]) == ("north", [4], "control")

        await publish(settings, records)  # a replay changes nothing
        await eventually(lambda: served_caught_up(settings))
        assert await stored_ids(pool) == ["s1", "s2", "s3"]


async def partitions(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'served'"
    )
    return {row["relname"] for row in rows}


async def test_retention_drops_the_days_past_the_setting_at_start_and_when_applied(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    settings.served_retention_days = 10
    days_ago = [0, 5, 9, 10, 11, 40]
    await write_served(pool, [answer(f"d{n}", NOW - timedelta(days=n)) for n in days_ago])
    today = NOW.date()
    async with running(ServedSink(settings)) as sink:
        # At its start: the days before today - 10 are gone, today - 10 is kept.
        kept = await eventually(
            lambda: _without(pool, partition_name(today - timedelta(days=11))), timeout=20
        )
        assert partition_name(today - timedelta(days=40)) not in kept
        assert await stored_ids(pool) == ["d0", "d10", "d5", "d9"]
        # Applied later (an hour on): one more day goes.
        dropped = await sink.apply_retention(today + timedelta(days=1))
        assert dropped == [partition_name(today - timedelta(days=10))]
        assert await stored_ids(pool) == ["d0", "d5", "d9"]
    assert sink.cutoff(date(2026, 12, 31)) == date(2026, 12, 21)


async def _without(pool: asyncpg.Pool, name: str) -> set[str] | None:
    found = await partitions(pool)
    return found if name not in found else None


SERVED_EXAMPLE = {
    "served_id": "0f6c1a6e9a8e4d1c8e8f2b7f4c2d9a10",
    "served_at": NOW.isoformat(),
    "endpoint": "user",
    "customer_id": "C00001",
    "region": "north",
    "product_ids": ["P0007", "P0015", "P0039"],
    "source": "cache",
    "model_version": "v20261207-0300",
    "experiment_id": "ease-vs-als",
    "arm": "treatment",
    "rule_ids": [3, 12],
}


@hypothesis_settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # each example starts a sink (seconds): few examples, many records each
@given(raw=st.lists(raw_documents(SERVED_EXAMPLE), min_size=10, max_size=60))
async def test_any_bytes_on_served_are_written_or_dead_lettered_and_the_sink_goes_on(
    settings: Settings, pool: asyncpg.Pool, raw: list[bytes]
) -> None:
    settings.served_retention_days = 36_500  # a valid answer of 2001 stays (retention: below)
    before = len(await dead_letters(settings))  # only names the marker
    marker = answer(f"M{before}-{len(raw)}")  # a valid record after the hostile ones
    sent = await publish(settings, [*[(b"h", value) for value in raw], *as_records([marker])])
    async with running(ServedSink(settings)) as sink:
        await eventually(lambda: served_caught_up(settings))
        assert sink.stopping.error is None
    valid = await valid_and_each_poison_dead_lettered_once(
        settings.kafka_bootstrap, topics.topic(topics.SERVED_DLQ, settings), ServedList, raw, sent
    )
    stored = set(await stored_ids(pool))
    for served in [*valid, marker]:
        assert served.served_id in stored
