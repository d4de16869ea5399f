"""The pull connector: company order API -> mapping -> topic `orders`, resumable by watermark.

Each page is handled as a unit: its good records are published to `orders` (keyed by customer
id) and its malformed ones to `orders.dlq`, and only once the broker has acknowledged both is
the watermark, (updated_at, order id) of the page's last record, saved in PostgreSQL. A crash
therefore resumes from the last acknowledged page: no gap. The guarantee on the topic is
at-least-once: a crash between the broker's ack and the watermark write re-sends that one page
on restart, and an order updated upstream is sent again. Both carry the same stable `order_id`,
which the tracker upserts idempotently, so PostgreSQL holds each order exactly once.

Pagination re-anchors on the watermark: cursor mode follows the API's keyset cursor from
`updated_since=<watermark>`; page mode asks for page 1 from the watermark again after every
page that moved it (a page number alone skips records when the data shifts between reads).
Records at or before the watermark, and repeats within a page, are skipped.

When the mapping file has a `products` section, each pass then pulls the company's catalogue
the same way (`ProductConnector`): its own path, its own watermark (source
`<connector_source>:products`), pages published to `products` keyed by product id, malformed
records to `products.dlq`.

`follow` polls for ever; `mgrecs-connector` (connector_service) runs it as a service on the
replica holding the puller lock.
"""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.db import DATABASE_UNREACHABLE
from mgrecs.common.logging import get_logger
from mgrecs.common.quality import QualityReport
from mgrecs.common.quality_checks import QualityAccumulator
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.company_client import ApiUnavailableError, CompanyClient
from mgrecs.ingest.identity import Resolver, open_resolver, unify
from mgrecs.ingest.mapping import (
    FieldMapping,
    MalformedRecordError,
    ProductFields,
    QueryParams,
    ResponseFields,
    lookup,
    map_product,
    map_record,
    position_of,
    product_position,
)
from mgrecs.ingest.metrics import (
    CONNECTOR_LAST_SYNC,
    CONNECTOR_RECORDS,
    CONNECTOR_SYNC_ERRORS,
    CONNECTOR_WATERMARK,
    ORDERS_ACCEPTED,
    PRODUCTS_ACCEPTED,
)
from mgrecs.ingest.publisher import BrokerUnavailableError, OrderPublisher
from mgrecs.store.reports import save_report
from mgrecs.store.watermarks import Position, load_watermark, save_watermark

log = get_logger(__name__)
MAX_EXAMPLE_ERRORS = 10
CONNECTOR_POOL_SIZE = 2
"""Connections to PostgreSQL per connector (its watermarks and quality reports; the puller
lock has its own). PostgreSQL's `max_connections` holds every replica's (docs/operations.md,
Scale)."""
SYNC_FAILURES: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("api", (ApiUnavailableError,)),
    ("broker", (BrokerUnavailableError,)),
    ("database", DATABASE_UNREACHABLE),
)
"""What `follow` survives (logged, counted by kind, tried again at the next poll)."""


@dataclass
class SyncReport:
    """What one sync pass did, for the operator (the CLI prints it)."""

    pages: int = 0
    published: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    """Records at or before the watermark, or repeated within a page."""
    watermark: Position | None = None
    errors: list[str] = field(default_factory=list)
    quality: QualityReport | None = None
    """The data-quality report of the orders this pass read (stored in PostgreSQL)."""
    quality_report_id: int | None = None
    lines: QualityAccumulator = field(default_factory=QualityAccumulator, repr=False)
    products: "SyncReport | None" = None
    """The catalogue's pass (when the mapping has a `products` section)."""


@dataclass
class _Page:
    orders: list[OrderEvent] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    top: Position | None = None


class _Puller:
    """Pages through one path of the company's API past a watermark: the pagination both
    connectors share; `handle_page` says what a page does."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        publisher: OrderPublisher,
        path: str,
        source: str,
        query: QueryParams,
        response: ResponseFields,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._publisher = publisher
        self._client = CompanyClient(settings, path)
        self._source = source
        self._query = query
        self._response = response
        self.last_success = time.time()
        """When a page or a pass last succeeded (epoch seconds): readiness reads it."""
        self.failure: str | None = None
        """Why the last pass failed; None once a page or a pass succeeds again."""

    shows_watermark = True
    """Whether the watermark gauge (`mgrecs_connector_watermark_timestamp`) follows this one."""

    async def aclose(self) -> None:
        await self._client.aclose()

    async def handle_page(self, records: Any, report: SyncReport) -> bool:
        """Publish one page, then move the watermark; True when it moved."""
        raise NotImplementedError

    async def _finish(self, report: SyncReport) -> None:
        """After a pass: log it (and whatever else the records need)."""
        log.info(
            "connector_synced",
            source=self._source,
            pages=report.pages,
            published=report.published,
            dead_lettered=report.dead_lettered,
            skipped=report.skipped,
        )

    async def _move(
        self, page_top: Position | None, before: Position | None, report: SyncReport
    ) -> bool:
        """Save the watermark when the page moved it."""
        self.last_success, self.failure = time.time(), None
        if page_top is not None and page_top != before:
            await save_watermark(self._pool, self._source, page_top)
            report.watermark = page_top
            if self.shows_watermark:
                CONNECTOR_WATERMARK.set(page_top.updated_at.timestamp())
            return True
        return False

    def _params(self, watermark: Position | None) -> dict[str, Any]:
        params: dict[str, Any] = {self._query.page_size: self._settings.connector_page_size}
        if watermark is not None:
            params[self._query.updated_since] = watermark.updated_at.isoformat()
        return params

    async def sync_once(self, stop: asyncio.Event | None = None) -> SyncReport:
        """Read everything past the watermark; return when the API has no more, or after the
        page being published once `stop` is set (a graceful shutdown mid-backlog)."""
        report = SyncReport(watermark=await load_watermark(self._pool, self._source))
        if report.watermark is not None and self.shows_watermark:
            CONNECTOR_WATERMARK.set(report.watermark.updated_at.timestamp())
        stopping = stop.is_set if stop is not None else lambda: False
        response = self._response
        query = self._query
        if self._settings.connector_pagination == "cursor":
            params = self._params(report.watermark)
            body = await self._client.get(params)
            while True:
                # The next page downloads while this one is published: the cursor is known.
                cursor = None if stopping() else lookup(body, response.next_cursor)
                following = (
                    asyncio.ensure_future(self._client.get({**params, query.cursor: cursor}))
                    if cursor
                    else None
                )
                try:
                    await self.handle_page(lookup(body, response.records), report)
                except BaseException:
                    if following is not None:
                        following.cancel()
                        await asyncio.gather(following, return_exceptions=True)
                    raise
                if following is None:
                    break
                body = await following
        else:
            page = 1
            while True:
                body = await self._client.get({**self._params(report.watermark), query.page: page})
                moved = await self.handle_page(lookup(body, response.records), report)
                if not lookup(body, response.has_more) or stopping():
                    break
                page = 1 if moved else page + 1
        CONNECTOR_LAST_SYNC.set_to_current_time()
        self.last_success, self.failure = time.time(), None
        await self._finish(report)
        return report

    def _no_list(self, records: Any) -> None:
        if not isinstance(records, list):
            raise ApiUnavailableError(f"response has no record list at {self._response.records!r}")


class OrderConnector(_Puller):
    """Syncs one upstream source onto `orders` (and its catalogue onto `products`, when the
    mapping has a `products` section)."""

    def __init__(
        self,
        settings: Settings,
        mapping: FieldMapping,
        pool: asyncpg.Pool,
        publisher: OrderPublisher,
        resolver: Resolver | None = None,
    ) -> None:
        """`resolver`: customer-id unification (docs/concepts.md, Customer identities), None
        for off."""
        super().__init__(
            settings,
            pool,
            publisher,
            mapping.orders_path,
            settings.connector_source,
            mapping.query,
            mapping.response,
        )
        self._mapping = mapping
        self._resolver = resolver
        self.products = (
            ProductConnector(settings, mapping.products, mapping.query, pool, publisher)
            if mapping.products is not None
            else None
        )
        """The catalogue's connector, None when the mapping has no `products` section."""

    async def aclose(self) -> None:
        await super().aclose()
        if self.products is not None:
            await self.products.aclose()

    def _letter(self, record: Any, reason: str) -> DeadLetter:
        key = lookup(record, self._mapping.customer.customer_id)
        return DeadLetter(
            source_topic=f"connector:{self._source}",
            partition=-1,
            offset=-1,
            key=str(key) if key is not None else None,
            reason=reason,
            payload=json.dumps(record, default=str),
        )

    def _sort(self, records: list[Any], watermark: Position | None, report: SyncReport) -> _Page:
        page = _Page(top=watermark)
        seen: set[Position] = set()
        for record in records:
            try:
                position = position_of(record, self._mapping)
            except MalformedRecordError as exc:
                page.letters.append(self._letter(record, str(exc)))
                continue
            if (watermark is not None and position <= watermark) or position in seen:
                report.skipped += 1
                continue
            seen.add(position)
            page.top = position if page.top is None else max(page.top, position)
            try:
                page.orders.append(map_record(record, self._mapping))
            except MalformedRecordError as exc:
                page.letters.append(self._letter(record, f"order {position.order_id}: {exc}"))
        return page

    async def handle_page(self, records: Any, report: SyncReport) -> bool:
        """Publish one page, then move the watermark; True when it moved."""
        self._no_list(records)
        before = report.watermark
        page = self._sort(records, before, report)
        if self._resolver is not None:
            page.orders = await self._unify(page)
        for order in page.orders:
            report.lines.add_event(order)
        for letter in page.letters:
            report.lines.add_rejected(letter.key, letter.reason)
        await self._publisher.publish(page.orders)
        await self._publisher.dead_letter(page.letters)
        report.pages += 1
        report.published += len(page.orders)
        report.dead_lettered += len(page.letters)
        ORDERS_ACCEPTED.labels("connector").inc(len(page.orders))
        CONNECTOR_RECORDS.labels("published").inc(len(page.orders))
        CONNECTOR_RECORDS.labels("dead_lettered").inc(len(page.letters))
        for letter in page.letters[: MAX_EXAMPLE_ERRORS - len(report.errors)]:
            report.errors.append(letter.reason)
        return await self._move(page.top, before, report)

    async def _unify(self, page: _Page) -> list[OrderEvent]:
        """The page's orders under unified customer ids; an id that standardizes to nothing
        sends its order to the dead-letter topic instead."""
        assert self._resolver is not None
        unified = []
        for order in page.orders:
            try:
                unified.append(await unify(order, self._resolver))
            except ValueError as exc:
                page.letters.append(
                    self._letter(order.model_dump(mode="json"), f"order {order.order_id}: {exc}")
                )
        return unified

    async def sync_once(self, stop: asyncio.Event | None = None) -> SyncReport:
        """The orders past their watermark, then (with a `products` section) the catalogue
        past its own; the catalogue's report is `products` of the orders' one."""
        report = await super().sync_once(stop)
        if self.products is not None and not (stop is not None and stop.is_set()):
            report.products = await self.products.sync_once(stop)
            self.last_success, self.failure = time.time(), None
        return report

    async def _finish(self, report: SyncReport) -> None:
        """The data-quality report of the orders read, stored; then the log line."""
        report.quality = report.lines.report(
            f"connector:{self._source}", "sync", self._settings.max_bad_record_rate
        )
        report.quality_report_id = await save_report(self._pool, report.quality)
        if not report.quality.passed:
            log.error(
                "connector_data_quality_failed", source=self._source, reason=report.quality.reason
            )
        await super()._finish(report)

    async def follow(self, stop: asyncio.Event) -> None:
        """Sync every `connector_poll_seconds` until `stop` is set (the page being published
        finishes first); an outage of the API, the broker or the database is logged, counted
        and tried again at the next poll."""
        while not stop.is_set():
            try:
                await self.sync_once(stop)
            except Exception as exc:
                kind = next((k for k, errors in SYNC_FAILURES if isinstance(exc, errors)), None)
                if kind is None:
                    raise
                self.failure = f"{kind}: {exc}"
                CONNECTOR_SYNC_ERRORS.labels(kind).inc()
                log.error("connector_sync_failed", source=self._source, error=self.failure)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.connector_poll_seconds)


PRODUCTS_SOURCE_SUFFIX = ":products"
"""The catalogue's watermark is kept under `<connector_source>:products`."""


class ProductConnector(_Puller):
    """Syncs the company's catalogue onto `products`, past its own watermark."""

    shows_watermark = False  # the gauge is the orders' (their freshness is what alerts)

    def __init__(
        self,
        settings: Settings,
        fields: ProductFields,
        query: QueryParams,
        pool: asyncpg.Pool,
        publisher: OrderPublisher,
    ) -> None:
        super().__init__(
            settings,
            pool,
            publisher,
            fields.path,
            settings.connector_source + PRODUCTS_SOURCE_SUFFIX,
            query,
            fields.response,
        )
        self._fields = fields

    def _letter(self, record: Any, reason: str) -> DeadLetter:
        key = lookup(record, self._fields.product_id)
        return DeadLetter(
            source_topic=f"connector:{self._source}",
            partition=-1,
            offset=-1,
            key=str(key) if key is not None else None,
            reason=reason,
            payload=json.dumps(record, default=str),
        )

    async def handle_page(self, records: Any, report: SyncReport) -> bool:
        """Publish one page of products, then move the watermark; True when it moved."""
        self._no_list(records)
        before = report.watermark
        top = before
        seen: set[Position] = set()
        products: list[ProductEvent] = []
        letters: list[DeadLetter] = []
        for record in records:
            try:
                position = product_position(record, self._fields)
            except MalformedRecordError as exc:
                letters.append(self._letter(record, str(exc)))
                continue
            if (before is not None and position <= before) or position in seen:
                report.skipped += 1
                continue
            seen.add(position)
            top = position if top is None else max(top, position)
            try:
                products.append(map_product(record, self._fields))
            except MalformedRecordError as exc:
                letters.append(self._letter(record, f"product {position.order_id}: {exc}"))
        await self._publisher.publish_products(products)
        await self._publisher.dead_letter(letters, products=True)
        report.pages += 1
        report.published += len(products)
        report.dead_lettered += len(letters)
        PRODUCTS_ACCEPTED.labels("connector").inc(len(products))
        CONNECTOR_RECORDS.labels("published").inc(len(products))
        CONNECTOR_RECORDS.labels("dead_lettered").inc(len(letters))
        for letter in letters[: MAX_EXAMPLE_ERRORS - len(report.errors)]:
            report.errors.append(letter.reason)
        return await self._move(top, before, report)


async def run_sync(settings: Settings) -> SyncReport:
    """`mgrecs sync`: validate the mapping, then one pass."""
    from mgrecs.common.db import create_pool
    from mgrecs.ingest.mapping import load_mapping

    mapping = load_mapping(settings.connector_mapping_file)  # refuse a bad file up front
    pool = await create_pool(settings.database_url, max_size=CONNECTOR_POOL_SIZE)
    publisher = OrderPublisher(settings)
    try:
        async with open_resolver(settings) as resolver:
            syncer = OrderConnector(settings, mapping, pool, publisher, resolver)
            try:
                return await syncer.sync_once()
            finally:
                await syncer.aclose()
    finally:
        await publisher.close()
        await pool.close()
