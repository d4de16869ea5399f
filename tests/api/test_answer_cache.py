"""The API's in-process answer cache: reuse within the TTL and the generation, one computation
for concurrent callers, a new generation or an error never served from memory."""

import asyncio

import asyncpg
import pytest

from mgrecs.api.answer_cache import AnswerCache


class Counting:
    """A computation that counts its calls and answers with the call number."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> int:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database said no")
        return self.calls


async def test_reused_within_the_ttl_and_per_key(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=60)
    compute = Counting()
    assert await cache.get("region", ("north", 20), compute) == 1
    assert await cache.get("region", ("north", 20), compute) == 1
    assert await cache.get("region", ("north", 10), compute) == 2
    assert await cache.get("region", ("south", 20), compute) == 3
    assert compute.calls == 3


async def test_concurrent_misses_share_one_computation(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=60)
    compute = Counting()
    compute.release.clear()
    waiting = [asyncio.create_task(cache.get("region", ("north",), compute)) for _ in range(5)]
    await asyncio.sleep(0.05)
    compute.release.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    assert compute.calls == 1


async def test_a_new_generation_is_computed_afresh(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=60, generation_refresh_seconds=0)
    compute = Counting()
    assert await cache.get("region", ("north",), compute) == 1
    await pool.execute("UPDATE cache_generations SET state = 'retired'")
    assert await cache.get("region", ("north",), compute) == 2
    assert await cache.get("region", ("north",), compute) == 2


async def test_expired_answer_served_once_while_recomputed(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=0.01)
    compute = Counting()
    assert await cache.get("region", ("north",), compute) == 1
    await asyncio.sleep(0.05)
    assert await cache.get("region", ("north",), compute) == 1  # stale, refresh started
    await asyncio.sleep(0.05)
    assert compute.calls == 2
    assert await cache.get("region", ("north",), compute) in (2, 3)


async def test_errors_are_not_remembered(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=60)
    failing = Counting(fail=True)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="database said no"):
            await cache.get("region", ("north",), failing)
    assert failing.calls == 2


async def test_ttl_zero_always_computes(pool: asyncpg.Pool) -> None:
    cache = AnswerCache(pool, ttl_seconds=0)
    compute = Counting()
    assert [await cache.get("region", ("north",), compute) for _ in range(3)] == [1, 2, 3]
