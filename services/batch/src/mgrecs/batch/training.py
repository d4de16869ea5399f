"""The retrain and refresh jobs: purchases from PostgreSQL -> recipe (chosen on the latest
purchases, or the active one's for a refresh) -> fitted model artifact -> active version if
it passes the gate.

Steps, recorded with their seconds (`Steps`): export (read the purchases and the catalogue,
and export the three Personalize datasets to the artifact store),
quality (the data-quality report), evaluate (the recipe measured next to popularity on the
latest purchases; a retrain searches the candidates here), train (fit on everything, save),
promote (the gate, `mgrecs.batch.promotion`: the active version's recipe measured on the same
period; the registry), buy-again (repurchase parameters and per-product statistics stored
with the version, for the api's buy-again list), and for a refresh infer. One of these jobs
runs at a time across every batch instance (`mgrecs.store.jobs.retrain_lock`).
"""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.batch.buy_again import store_buy_again
from mgrecs.batch.dataset import check_order_lines, load_lines, load_products
from mgrecs.batch.evaluation import choose_recipe
from mgrecs.batch.export import export_datasets
from mgrecs.batch.incumbent import measure_incumbent
from mgrecs.batch.inference import Dispatch, InferenceSummary, infer
from mgrecs.batch.metrics import JOB_SECONDS, MODEL_NDCG
from mgrecs.batch.promotion import Incumbent, decide
from mgrecs.batch.steps import Steps
from mgrecs.common.artifacts import FileStore, open_store
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER, TRAINING_HOURS
from mgrecs.engine.dataset import Lines
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import ProductInfo
from mgrecs.engine.selection import Selection, measure_recipe
from mgrecs.store import products as product_store
from mgrecs.store.jobs import retrain_lock
from mgrecs.store.model_versions import RECIPE, ModelVersion, active_model, find_active, register
from mgrecs.store.reports import save_report

log = get_logger(__name__)


class NoTrainingData(Exception):
    """There are no purchases to learn from yet."""


class DataQualityFailed(Exception):
    """Too many bad order lines to train on; the stored report says which and why."""


def new_version() -> str:
    """Sortable by time, unique across concurrent trainers: 20261126T030000Z-3f9a1c."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _fit_and_save(
    lines: Lines,
    products: list[ProductInfo],
    selection: Selection,
    path: Path,
) -> RecommenderModel:
    """CPU-bound part (runs in a thread): fit the chosen recipe (and the catalogue) on
    everything, save."""
    model = RecommenderModel.fit(lines, recipe=selection.recipe, products=products)
    model.save(path)
    return model


async def shared_copy(settings: Settings, path: Path) -> str:
    """Where engines and batch workers load the model saved at `path` from: the artifact
    store's copy when it is S3 (they may run on other machines), else the path itself
    (`artifact_dir`, a volume they share)."""
    store = open_store(settings)
    if isinstance(store, FileStore):
        return str(path)
    return await store.put(path, f"models/{path.name}")


async def check_quality(pool: asyncpg.Pool, settings: Settings, catalogue: list[str]) -> None:
    """Store the report of the orders about to be trained on; stop above the bad-record rate."""
    report = await check_order_lines(pool, settings.max_bad_record_rate, catalogue)
    report_id = await save_report(pool, report)
    log.info("retrain_quality", report_id=report_id, passed=report.passed, reason=report.reason)
    if not report.passed:
        raise DataQualityFailed(
            f"retrain stopped, data-quality report {report_id}: {report.reason}"
        )


async def _incumbent(
    pool: asyncpg.Pool, settings: Settings, lines: Lines, metrics: dict[str, Any]
) -> Incumbent | None:
    """The active version with its figure on the new version's period (None: none active)."""
    active = await find_active(pool, RECIPE)
    if active is None:
        return None
    repeat = not settings.exclude_purchased
    return await asyncio.to_thread(measure_incumbent, active, lines, metrics, repeat)


Choose = Callable[[Lines], Selection]
"""How a job picks its recipe from the purchases (CPU-bound: runs in a thread)."""


async def _train(
    pool: asyncpg.Pool,
    settings: Settings,
    steps: Steps,
    choose: Choose,
    refresh_of: str | None = None,
) -> ModelVersion:
    """The steps both jobs share, export to promote (the caller holds the retrain lock)."""
    job = "retrain" if refresh_of is None else "refresh"
    started = time.perf_counter()
    with JOB_SECONDS.labels(job).time():
        version = new_version()
        async with steps.step("export"):
            # Side by side: the export is PostgreSQL's work (sorting, CSV), the load Python's.
            lines, products, datasets = await asyncio.gather(
                load_lines(pool),
                load_products(pool),
                export_datasets(pool, open_store(settings), version),
            )
        log.info(f"{job}_loaded", interactions=len(lines), products=len(products))
        if not len(lines):
            raise NoTrainingData("no purchases in the database yet: nothing to train on")
        async with steps.step("quality"):
            await check_quality(pool, settings, [p.product_id for p in products])
        async with steps.step("evaluate"):
            selection = await asyncio.to_thread(choose, lines)
        path = (Path(settings.artifact_dir) / f"{RECIPE}-{version}.npz").resolve()
        async with steps.step("train"):
            fit_started = time.perf_counter()
            model = await asyncio.to_thread(_fit_and_save, lines, products, selection, path)
            # A training hour is AWS's unit (4 vCPU): the fit's wall time on this machine.
            METER.add("batch", TRAINING_HOURS, (time.perf_counter() - fit_started) / 3600)
            artifact_uri = await shared_copy(settings, path)
        metrics = selection.to_metrics()
        metrics["datasets"] = {name: asdict(dataset) for name, dataset in datasets.items()}
        if refresh_of is not None:
            metrics["refresh_of"] = refresh_of
        async with steps.step("promote"):
            incumbent = await _incumbent(pool, settings, lines, metrics)
            if incumbent is not None:
                metrics["gate"] = incumbent.record(settings.promotion_margin)
            decision = decide(metrics, incumbent, settings.promotion_margin)
            reason = decision.reason if refresh_of is None else f"refresh: {decision.reason}"
            registered = await register(
                pool,
                ModelVersion(
                    version=version,
                    recipe=RECIPE,
                    artifact_uri=artifact_uri,
                    n_users=len(model.customer_ids),
                    n_items=len(model.item_ids),
                    n_interactions=len(lines),
                    metrics=metrics,
                ),
                promote=decision.promote,
                reason=reason,
            )
        async with steps.step("buy-again"):
            await store_buy_again(pool, version, lines)
    validation = metrics["validation"]
    if validation is not None:
        MODEL_NDCG.labels("chosen").set(validation["chosen"]["ndcg@10"])
        MODEL_NDCG.labels("popularity").set(validation["popularity"]["ndcg@10"])
    log.info(
        f"{job}_done",
        version=version,
        refresh_of=refresh_of,
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
        steps=steps.done,
        seconds=round(time.perf_counter() - started, 3),
    )
    return registered


async def retrain(
    pool: asyncpg.Pool, settings: Settings, steps: Steps | None = None
) -> ModelVersion:
    """Train a model on every purchase, with the recipe chosen on the latest ones; it becomes
    active if it passes the promotion gate, otherwise it is kept as a candidate with the
    reason. Raises AnotherRetrainRunning when a retrain or refresh runs elsewhere."""
    async with retrain_lock(pool):
        margins = await product_store.margins(pool)
        return await _train(
            pool,
            settings,
            steps or Steps(pool),
            lambda lines: choose_recipe(lines, settings, margins),
        )


@dataclass(frozen=True)
class Refreshed:
    model: ModelVersion
    promoted: bool
    inference: InferenceSummary


async def refresh(
    pool: asyncpg.Pool,
    settings: Settings,
    steps: Steps | None = None,
    *,
    dispatch: Dispatch | None = None,
) -> Refreshed:
    """Fold new customers, products and purchases in without a full retrain: the active
    version's recipe with its parameters (no search) fitted on every purchase, measured and
    gated like a retrain, then an infer (sharded through `dispatch` when given). Raises
    NoActiveModel before the first retrain."""
    steps = steps or Steps(pool)
    async with retrain_lock(pool):
        active = await active_model(pool)
        recipe, params = active.metrics["recipe"], active.metrics["params"]
        model = await _train(
            pool,
            settings,
            steps,
            lambda lines: measure_recipe(
                lines, recipe, params, repeat=not settings.exclude_purchased
            ),
            refresh_of=active.version,
        )
        promoted = (await active_model(pool)).version == model.version
    async with steps.step("infer"):
        inference = await infer(pool, settings, dispatch=dispatch)
    return Refreshed(model, promoted, inference)
