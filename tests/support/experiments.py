"""The A/B experiment the api's experiment and feedback tests run: two arms, half each; and
synthetic feedback for its arms with planted rates."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import numpy as np

from mgrecs.common.experiments import Arm, Experiment
from mgrecs.common.feedback import FeedbackEvent, FeedbackSource
from mgrecs.store.feedback import write_feedback

AT = datetime(2026, 11, 26, tzinfo=UTC)

EXPERIMENT = Experiment(
    id="ab1",
    arms=[
        Arm(name="control", model_version="v1", share=0.5),
        Arm(name="treatment", model_version="v2", share=0.5),
    ],
)


async def plant(
    pool: asyncpg.Pool,
    arm: str,
    customers: int,
    ctr: float,
    conversion: float,
    seed: int,
    source: FeedbackSource = "realtime",
    shown: int = 4,
    experiment: Experiment = EXPERIMENT,
) -> None:
    """Each of `customers` customers of `arm` sees `shown` recommendations; each is clicked
    with probability `ctr` and bought with probability `conversion` (for 20 to 60)."""
    rng = np.random.default_rng(seed)
    events: list[FeedbackEvent] = []

    def add(customer: str, n: int, kind: Any, revenue: Decimal | None = None) -> None:
        events.append(
            FeedbackEvent(
                event_id=f"{arm}-{source}-{customer}-{n}-{kind}",
                customer_id=customer,
                product_id=f"p{n}",
                kind=kind,
                occurred_at=AT,
                model_version=experiment.arm(arm).model_version,  # type: ignore[union-attr]
                source=source if kind == "impression" else None,
                experiment_id=experiment.id,
                arm=arm,
                revenue=revenue,
            )
        )

    for c in range(customers):
        customer = f"{arm}-{c}"
        for n in range(shown):
            add(customer, n, "impression")
            if rng.random() < ctr:
                add(customer, n, "click")
            if rng.random() < conversion:
                add(customer, n, "purchase", Decimal(f"{rng.uniform(20, 60):.2f}"))
    await write_feedback(pool, events)
