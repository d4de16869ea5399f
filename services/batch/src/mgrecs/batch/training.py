"""The retrain job: purchases from PostgreSQL -> recipe chosen on the latest purchases ->
fitted model artifact -> active version."""

import asyncio
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.batch.dataset import check_order_lines, load_interactions, load_products
from mgrecs.batch.evaluation import choose_recipe
from mgrecs.batch.metrics import JOB_SECONDS, MODEL_NDCG
from mgrecs.batch.promotion import decide
from mgrecs.batch.registry import RECIPE, ModelVersion, active_metrics, register
from mgrecs.common.logging import get_logger
from mgrecs.common.quality_store import save_report
from mgrecs.common.settings import Settings
from mgrecs.engine.model import CooccurrenceModel, Interaction, ProductInfo

log = get_logger(__name__)


class NoTrainingData(Exception):
    """There are no purchases to learn from yet."""


class DataQualityFailed(Exception):
    """Too many bad order lines to train on; the stored report says which and why."""


def new_version() -> str:
    """Sortable by time, unique across concurrent trainers: 20261126T030000Z-3f9a1c."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _fit_and_save(
    interactions: list[Interaction],
    products: list[ProductInfo],
    path: Path,
    settings: Settings,
) -> tuple[CooccurrenceModel, dict[str, Any]]:
    """CPU-bound part (runs in a thread): choose the recipe on the latest purchases, fit
    the model with it (and the catalogue) on everything, save."""
    selection = choose_recipe(interactions, settings)
    model = CooccurrenceModel.fit(interactions, recipe=selection.recipe, products=products)
    model.save(path)
    return model, selection.to_metrics()


async def _check_quality(pool: asyncpg.Pool, settings: Settings, catalogue: list[str]) -> None:
    """Store the report of the orders about to be trained on; stop above the bad-record rate."""
    report = await check_order_lines(pool, settings.max_bad_record_rate, catalogue)
    report_id = await save_report(pool, report)
    log.info("retrain_quality", report_id=report_id, passed=report.passed, reason=report.reason)
    if not report.passed:
        raise DataQualityFailed(
            f"retrain stopped, data-quality report {report_id}: {report.reason}"
        )


async def retrain(pool: asyncpg.Pool, settings: Settings) -> ModelVersion:
    """Train a model on every purchase; it becomes active if it passes the promotion gate,
    otherwise it is kept as a candidate with the reason."""
    started = time.perf_counter()
    with JOB_SECONDS.labels("retrain").time():
        interactions = await load_interactions(pool)
        products = await load_products(pool)
        log.info(
            "retrain_loaded",
            interactions=len(interactions),
            products=len(products),
            seconds=round(time.perf_counter() - started, 3),
        )
        if not interactions:
            raise NoTrainingData("no purchases in the database yet: nothing to train on")
        await _check_quality(pool, settings, [p.product_id for p in products])
        version = new_version()
        path = (Path(settings.artifact_dir) / f"{RECIPE}-{version}.npz").resolve()
        model, metrics = await asyncio.to_thread(
            _fit_and_save, interactions, products, path, settings
        )
        decision = decide(metrics, await active_metrics(pool))
        registered = await register(
            pool,
            ModelVersion(
                version=version,
                recipe=RECIPE,
                artifact_uri=str(path),
                n_users=len(model.customer_ids),
                n_items=len(model.item_ids),
                n_interactions=len(interactions),
                metrics=metrics,
            ),
            promote=decision.promote,
            reason=decision.reason,
        )
    validation = metrics["validation"]
    if validation is not None:
        MODEL_NDCG.labels("chosen").set(validation["chosen"]["ndcg@10"])
        MODEL_NDCG.labels("popularity").set(validation["popularity"]["ndcg@10"])
    log.info(
        "retrain_done",
        version=version,
        users=registered.n_users,
        items=registered.n_items,
        interactions=registered.n_interactions,
        recipe=metrics["recipe"],
        params=metrics["params"],
        validation=validation,
        fallback=metrics["selection"]["fallback"],
        promoted=decision.promote,
        decision=decision.reason,
        artifact=str(path),
        seconds=round(time.perf_counter() - started, 3),
    )
    return registered
