"""The names memo's remembered reasons (real database): a reason named once is looked up,
not parsed, until the first of its products' names expires, so a rename shows exactly when
it did without them; a read that failed is not remembered; a reason reads the same whatever
other reasons its answer holds."""

import asyncpg
import pytest

from mgrecs.api.product_names import NameMemo
from mgrecs.store.products import StoredProduct, insert_products

TTL = 10.0


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def named(pool: asyncpg.Pool) -> None:
    await insert_products(
        pool,
        [
            StoredProduct("P1", "Oak Lamp"),
            StoredProduct("P2", "Tea"),
            StoredProduct("together with P9", "Odd"),  # an id may hold blanks
        ],
    )


async def _texts(memo: NameMemo, reasons: list[str | None]) -> list[str | None]:
    return [None if n is None else n.text for n in await memo.named_reasons(reasons)]


async def test_a_reason_is_remembered_until_the_first_of_its_names_expires(
    named: None, pool: asyncpg.Pool
) -> None:
    clock = Clock()
    memo = NameMemo(pool, TTL, clock=clock)
    assert await _texts(memo, ["bought P1"]) == ["bought Oak Lamp"]  # P1 until 110
    clock.now = 105.0
    assert await _texts(memo, ["bought P1, P2", None]) == ["bought Oak Lamp, Tea", None]
    reads = memo.reads  # P2 until 115: the reason until 110
    await pool.execute("UPDATE products SET name = name || ' XL'")
    clock.now = 109.0
    assert await _texts(memo, ["bought P1, P2"]) == ["bought Oak Lamp, Tea"]
    assert memo.reads == reads  # remembered: no query
    clock.now = 110.0  # P1's name is read again, P2's still holds (as without the memo)
    assert await _texts(memo, ["bought P1, P2"]) == ["bought Oak Lamp XL, Tea"]
    assert memo.reads == reads + 1
    clock.now = 115.0
    assert await _texts(memo, ["bought P1, P2"]) == ["bought Oak Lamp XL, Tea XL"]


async def test_a_reason_whose_names_were_not_read_is_named_once_they_can_be(
    named: None, pool: asyncpg.Pool
) -> None:
    memo = NameMemo(pool, TTL, clock=Clock())
    await pool.execute("ALTER TABLE products RENAME TO products_away")
    try:
        assert await _texts(memo, ["bought P1"]) == ["bought P1"]  # logged, ids kept
    finally:
        await pool.execute("ALTER TABLE products_away RENAME TO products")
    assert await _texts(memo, ["bought P1"]) == ["bought Oak Lamp"]


async def test_a_reason_reads_the_same_whatever_its_answer_holds(
    named: None, pool: asyncpg.Pool
) -> None:
    alone = NameMemo(pool, TTL, clock=Clock())
    assert await _texts(alone, ["bought together with P9"]) == ["bought together with P9"]
    beside = NameMemo(pool, TTL, clock=Clock())
    reasons: list[str | None] = ["bought together with P9", "bought P1, together with P9"]
    assert await _texts(beside, reasons) == ["bought together with P9", "bought Oak Lamp, Odd"]


async def test_remembered_names_replace_the_reasons_named_before(
    named: None, pool: asyncpg.Pool
) -> None:
    memo = NameMemo(pool, TTL, clock=Clock())
    assert await _texts(memo, ["bought P1"]) == ["bought Oak Lamp"]
    memo.remember({"P1": "Desk Lamp"})
    assert await _texts(memo, ["bought P1"]) == ["bought Desk Lamp"]
