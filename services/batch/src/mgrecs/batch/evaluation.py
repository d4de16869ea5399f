"""Hold-out evaluation: does the model beat popularity on the most recent purchases?

Time-based split (never random: the model must predict the future from the past). Train on
everything before the cutoff, then for each known customer who bought something new after
it, check whether any of those products is in their top-k (hit rate@k), against the same
check for the regional popularity list with their own purchases removed.
"""

from datetime import UTC, datetime
from typing import Any

import numpy as np

from mgrecs.engine.model import CooccurrenceModel, Interaction

HOLDOUT_FRACTION = 0.1
"""Share of the order lines, the most recent ones, held out for evaluation."""
MAX_EVAL_USERS = 20_000
"""Evaluated customers are capped (a fixed random subset) to bound the cost."""


def holdout_metrics(interactions: list[Interaction], k: int = 10) -> dict[str, Any]:
    """`{"k", "cutoff", "users", "hit_rate", "popularity_hit_rate"}`, or why it was skipped."""
    times = np.array([line.ordered_at.timestamp() for line in interactions])
    if times.size == 0:
        return {"skipped": "no interactions"}
    cutoff = float(np.quantile(times, 1 - HOLDOUT_FRACTION))
    train = [line for line, t in zip(interactions, times, strict=True) if t < cutoff]
    test = [line for line, t in zip(interactions, times, strict=True) if t >= cutoff]
    if not train:
        return {"skipped": "all purchases share one timestamp"}
    model = CooccurrenceModel.fit(train)
    known = set(model.customer_ids)
    bought_after: dict[str, set[str]] = {}
    for line in test:
        if line.customer_id in known:
            bought_after.setdefault(line.customer_id, set()).add(line.product_id)
    targets = {
        customer: new
        for customer, products in bought_after.items()
        if (new := products - set(model.history(customer)))
    }
    if not targets:
        return {"skipped": "no known customer bought anything new after the cutoff"}
    customers = sorted(targets)
    if len(customers) > MAX_EVAL_USERS:
        picked = np.random.default_rng(0).choice(len(customers), MAX_EVAL_USERS, replace=False)
        customers = [customers[i] for i in sorted(picked)]

    recommended = model.recommend_all(k, customers)
    popular_by_region: dict[str | None, list[str]] = {}
    hits = popular_hits = 0
    for customer in customers:
        region = model.region_of(customer)
        if region not in popular_by_region:
            ranked = model.popular(region, len(model.item_ids))
            popular_by_region[region] = [s.item_id for s in ranked]
        history = set(model.history(customer))
        popular = [item for item in popular_by_region[region] if item not in history][:k]
        hits += any(s.item_id in targets[customer] for s in recommended.get(customer, []))
        popular_hits += any(item in targets[customer] for item in popular)
    return {
        "k": k,
        "cutoff": datetime.fromtimestamp(cutoff, UTC).isoformat(),
        "train_interactions": len(train),
        "users": len(customers),
        "hit_rate": round(hits / len(customers), 4),
        "popularity_hit_rate": round(popular_hits / len(customers), 4),
    }
