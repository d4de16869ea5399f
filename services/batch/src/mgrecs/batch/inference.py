"""The infer job: the active model scores every active customer and every product, and the
results replace the cache tables the API (and the old pipeline's readers) serve from."""

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from mgrecs.batch.cache import replace_cache
from mgrecs.batch.dataset import active_customers, purchase_histories
from mgrecs.batch.metrics import JOB_SECONDS
from mgrecs.batch.registry import active_model
from mgrecs.batch.steps import Steps
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.engine.model import CooccurrenceModel, Scored

log = get_logger(__name__)


@dataclass(frozen=True)
class InferenceSummary:
    version: str
    users: int
    users_unknown_to_model: int
    products: int
    user_rows_deleted: int
    product_rows_deleted: int
    seconds: float


def _score(
    model: CooccurrenceModel,
    customers: list[str],
    newcomers: dict[str, tuple[str | None, list[str]]],
    settings: Settings,
) -> tuple[dict[str, list[Scored]], dict[str, list[Scored]]]:
    """CPU-bound part (runs in a thread). Customers who ordered after the model was trained
    are scored from their purchase history in the database."""
    k = settings.recommendations_per_user
    exclude = settings.exclude_purchased
    users = model.recommend_all(k, customers, exclude_purchased=exclude)
    for customer, (region, history) in newcomers.items():
        users[customer] = model.recommend(history, region, k, exclude)
    similar = {
        item: model.similar_items(item, settings.similar_per_product) for item in model.item_ids
    }
    return users, similar


async def infer(
    pool: asyncpg.Pool, settings: Settings, steps: Steps | None = None
) -> InferenceSummary:
    """Fill the cache tables from the active model (raises NoActiveModel when none); steps
    score (load and rank) and write."""
    steps = steps or Steps(pool)
    started = time.perf_counter()
    with JOB_SECONDS.labels("infer").time():
        async with steps.step("score"):
            version = await active_model(pool)
            model = await asyncio.to_thread(CooccurrenceModel.load, Path(version.artifact_uri))
            now = datetime.now(UTC)
            customers = await active_customers(pool, now - timedelta(days=settings.active_days))
            known = set(model.customer_ids)
            newcomers = await purchase_histories(pool, [c for c in customers if c not in known])
            log.info(
                "infer_loaded",
                version=version.version,
                active_customers=len(customers),
                unknown_to_model=len(newcomers),
                products=len(model.item_ids),
            )
            users, similar = await asyncio.to_thread(_score, model, customers, newcomers, settings)
            scored_at = time.perf_counter()
        async with steps.step("write"):
            user_rows, product_rows = await replace_cache(
                pool, users, similar, updated_at=datetime.now(UTC).replace(tzinfo=None)
            )
    summary = InferenceSummary(
        version=version.version,
        users=user_rows.upserted,
        users_unknown_to_model=len(newcomers),
        products=product_rows.upserted,
        user_rows_deleted=user_rows.deleted,
        product_rows_deleted=product_rows.deleted,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "infer_done", write_seconds=round(time.perf_counter() - scored_at, 3), **asdict(summary)
    )
    return summary
