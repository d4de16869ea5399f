"""The sample-data generator's orders as engine interactions (no region: the recipes' tests
score without it)."""

from datetime import UTC, datetime

from mgrecs.engine.records import Interaction
from mgrecs.ingest.sample_data import generate

ANCHOR = datetime(2026, 6, 1, tzinfo=UTC)


def sample_lines(seed: int, customers: int, products: int, orders: int) -> list[Interaction]:
    """One interaction per generated order line, anchored at ANCHOR."""
    sample = generate(
        seed=seed, customers=customers, products=products, orders=orders, anchor=ANCHOR
    )
    return [
        Interaction(o.customer.customer_id, li.product_id, li.quantity, o.ordered_at, None)
        for o in sample.orders
        for li in o.lines
    ]
