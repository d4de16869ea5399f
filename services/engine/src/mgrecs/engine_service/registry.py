"""Which trained model the engine serves: polls the active version (`mgrecs.store.model_versions`)
and swaps atomically.

The batch service registers each trained model (an .npz written by `RecommenderModel.save`)
and marks one active. A request reads `registry.current` once and uses that object to the
end, so a swap never mixes two models within one answer.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from mgrecs.common.artifacts import local_copy
from mgrecs.common.logging import get_logger
from mgrecs.common.metrics import set_model_version
from mgrecs.common.settings import Settings
from mgrecs.engine.arrays import IntArray
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.promotion import popularity_order
from mgrecs.engine_service import metrics
from mgrecs.store import model_versions

MAX_PINNED = 4
"""Non-active versions kept loaded for pinned campaigns (experiments' arms); more evicts the
least recently asked."""
MAX_CACHED_ORDERS = 64
"""Popularity orders (one per region asked for) kept per served model."""

log = get_logger(__name__)


@dataclass(frozen=True)
class ServedModel:
    version: str
    model: RecommenderModel
    trained_at: datetime | None = None
    """When its training read the orders: real-time history before it is in the model."""
    _orders: dict[str | None, IntArray] = field(default_factory=dict, compare=False, repr=False)

    def popularity_order(self, region: str | None) -> IntArray:
        """`promotion.popularity_order`, computed once per region and model."""
        order = self._orders.get(region)
        if order is None:
            if len(self._orders) >= MAX_CACHED_ORDERS:  # regions come from requests
                self._orders.clear()
            order = self._orders[region] = popularity_order(self.model, region)
        return order


class ModelRegistry:
    """Holds the served model; `refresh` loads a newly active version in a worker thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.current: ServedModel | None = None
        self._failed: str | None = None
        self._pinned: OrderedDict[str, ServedModel] = OrderedDict()
        self._loading = asyncio.Lock()
        self._unloadable: set[str] = set()

    @property
    def version(self) -> str | None:
        current = self.current
        return current.version if current else None

    async def refresh(self, pool: asyncpg.Pool) -> bool:
        """Swap in the active version if it changed; True when a new model now serves."""
        active = await model_versions.find_active(pool, model_versions.RECIPE)
        if active is None or active.version == self.version:
            return False
        version, uri = active.version, active.artifact_uri
        try:
            model = await self._load(uri)
        except Exception as exc:  # a bad artifact must not stop the poller or the old model
            metrics.MODEL_LOADS.labels(result="failed").inc()
            if self._failed != version:  # once per version, not on every poll
                log.error("model_load_failed", version=version, artifact_uri=uri, error=str(exc))
                self._failed = version
            return False
        self.current = ServedModel(version, model, active.trained_at)  # the atomic swap
        metrics.MODEL_LOADS.labels(result="loaded").inc()
        set_model_version("engine", version)
        log.info(
            "model_swapped",
            version=version,
            items=len(model.item_ids),
            customers=len(model.customer_ids),
        )
        return True

    async def pinned(self, pool: asyncpg.Pool, version: str) -> ServedModel | None:
        """Model `version` (active or not), loaded on first ask; None when no such version
        is registered or its artifact will not load (a client error, not the engine's: a
        5xx would make the API take the whole engine for down)."""
        current = self.current
        if current is not None and current.version == version:
            return current
        async with self._loading:  # one load per version, however many ask at once
            if (served := self._pinned.get(version)) is not None:
                self._pinned.move_to_end(version)
                return served
            found = await model_versions.find(pool, version, model_versions.RECIPE)
            if found is None or version in self._unloadable:
                return None
            try:
                model = await self._load(found.artifact_uri)
            except Exception as exc:  # a bad artifact: answered as unknown, not retried
                metrics.MODEL_LOADS.labels(result="failed").inc()
                log.error("pinned_model_load_failed", version=version, error=str(exc))
                self._unloadable.add(version)
                return None
            served = self._pinned[version] = ServedModel(version, model, found.trained_at)
            if len(self._pinned) > MAX_PINNED:
                self._pinned.popitem(last=False)
            log.info("model_pinned", version=version)
            return served

    async def _load(self, uri: str) -> RecommenderModel:
        """The model at `uri` (a path, `file://` or `s3://`: the artifact store's)."""
        path = await local_copy(uri, self._settings)
        return await asyncio.to_thread(RecommenderModel.load, path)

    async def poll(
        self, pool: asyncpg.Pool, interval: float, swapped: Callable[[ServedModel], None]
    ) -> None:
        """Refresh every `interval` seconds until cancelled, calling `swapped` with each newly
        served model; a failed poll keeps the old model."""
        while True:
            try:
                if await self.refresh(pool) and self.current is not None:
                    swapped(self.current)
            except Exception as exc:  # database away: keep serving, try again next round
                log.warning("model_poll_failed", error=str(exc), error_type=type(exc).__name__)
            await asyncio.sleep(interval)
