"""The retrain's `buy-again` step: repurchase parameters and per-product statistics fitted on
the purchases and stored with the model version, for the api's `/v1/users/{id}/buy-again`.

Both modes run it on the purchases their retrain (or refresh) read: the self-hosted one's,
and AWS mode's (Personalize trains the model, this step the repurchase statistics), so the
list scores the same way in both. The api reads them for the active version of the mode's
lineage (`repurchase_params`, `repurchase_stats`, migration 0012); the batch keeps those of
the active and recent versions only.
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from mgrecs.common.logging import get_logger
from mgrecs.engine.arrays import Float64Array
from mgrecs.engine.buy_again_choice import select_buy_again
from mgrecs.engine.dataset import Lines
from mgrecs.engine.repurchase import (
    DEFAULT_INTERVAL_DAYS,
    BuyAgainParams,
    RepurchaseStats,
)
from mgrecs.store import repurchase

log = get_logger(__name__)

KEEP_VERSIONS = 5
"""Besides the active ones: the newest fitted and the most recently promoted (rollbacks)."""


@dataclass(frozen=True)
class BuyAgainFit:
    """What the api needs to score a history the way this version was fitted."""

    params: BuyAgainParams
    stats: RepurchaseStats
    product_ids: list[str]
    """Indexed like the stats' arrays."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """How the parameters were chosen (`BuyAgainChoice.to_metrics`), for the retrain's log."""


def fit_buy_again(lines: Lines) -> BuyAgainFit:
    """Parameters chosen on the validation slice (`select_buy_again`: the defaults when
    there is too little data) and per-product statistics from every purchase (CPU-bound:
    run in a thread)."""
    choice = select_buy_again(lines)
    return BuyAgainFit(choice.params, choice.stats, choice.product_ids, choice.to_metrics())


async def save_buy_again(conn: asyncpg.Connection, version: str, fit: BuyAgainFit) -> None:
    """Store `fit` as model version `version`'s (replacing any), and forget the statistics
    of versions no longer worth keeping; one transaction."""
    stats = fit.stats
    await repurchase.save(
        conn,
        version,
        fit.params.as_dict(),
        (_median(stats.repeat_rate, 1.0), _median(stats.interval_days, DEFAULT_INTERVAL_DAYS)),
        zip(fit.product_ids, stats.repeat_rate.tolist(), stats.interval_days.tolist(), strict=True),
        KEEP_VERSIONS,
    )


async def store_buy_again(pool: asyncpg.Pool, version: str, lines: Lines) -> BuyAgainFit:
    """The job's `buy-again` step: fit on `lines` (in a thread) and store as `version`'s."""
    fitted = await asyncio.to_thread(fit_buy_again, lines)
    async with pool.acquire() as conn:
        await save_buy_again(conn, version, fitted)
    log.info("buy_again_fitted", version=version, **fitted.evidence)
    return fitted


def _median(values: Float64Array, default: float) -> float:
    """What a product the version never saw is assumed to have: the median product's."""
    return float(np.median(values)) if values.size else default
