"""CPU cost of naming the products of an answer's reasons (issue 19, item 5): a 10-item list
whose reasons cite 3 products each (`bought P0001, P0002, P0003`), against one whose reasons
cite none (`popular in north`), with every name already in the API's memo (the steady state:
no query). Process CPU time, so the figure holds on a shared machine.
Run: `.venv/bin/python bench/reason_names_cost.py`.
"""

import asyncio
import time

from mgrecs.api.product_names import NameMemo
from mgrecs.api.schemas.shared import RecommendedItem

ANSWERS = 20_000
REPEATS = 3


async def per_answer(memo: NameMemo, items: list[RecommendedItem]) -> float:
    """µs of CPU per answer named."""
    start = time.process_time()
    for _ in range(ANSWERS):
        await memo.name_items(items)
    return (time.process_time() - start) / ANSWERS * 1e6


async def main() -> None:
    memo = NameMemo(None, ttl_seconds=3600)  # type: ignore[arg-type]  # never reads
    memo.remember({f"P{i:04d}": f"Family Cushion {i}" for i in range(1000)})
    cited = [
        RecommendedItem(
            product_id=f"P{i:04d}", score=0.5, reason=f"bought P{i:04d}, P{i + 1:04d}, P{i + 2:04d}"
        )
        for i in range(10)
    ]
    plain = [
        RecommendedItem(product_id=f"P{i:04d}", score=0.5, reason="popular in north")
        for i in range(10)
    ]
    for label, items in (("3 products cited per reason", cited), ("none cited", plain)):
        runs = [await per_answer(memo, items) for _ in range(REPEATS)]
        print(f"{label}: " + ", ".join(f"{r:.1f}" for r in runs) + " µs CPU per 10-item answer")
    assert memo.reads == 0, "the memo read the database"


if __name__ == "__main__":
    asyncio.run(main())
