"""A fake of the company's order API (and its catalogue, `GET /products`), with switches to
inject the faults the real one has.

Tests and the demo run the connector against it. Orders are deterministic from a seed: small
synthetic ones for tests (`generate_orders`) or the sample data set (`orders_from_sample`), which
`python -m mgrecs.ingest.fake_company_api` serves on a port for the demo. The API
serves orders sorted by (updated_at, id), filtered by `updated_since` (inclusive, as many real
APIs do), paged either by an opaque keyset cursor or by page number, behind a bearer token or an
API-key header. The switches in `Faults` make it fail, throttle, stall, send broken or repeated
records, and change its data between two page reads. `touch` corrects, cancels or returns an
order upstream, as the company does: the order comes again with a later `updated_at`.
`/products` serves the catalogue (`generate_products`, `products_from_sample`) the same way,
behind the same credentials and faults; `touch_product` changes a product upstream.
"""

import argparse
import asyncio
import base64
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.ingest.sample_data import SampleData, generate

AuthKind = Literal["bearer", "api-key"]
EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
REGIONS = ("north", "south", "east", "west")
CATEGORIES = ("tools", "garden", "kitchen", "toys", "books")


@dataclass
class Faults:
    """Fault switches; tests flip them while the API runs."""

    fail_next: int = 0
    """Answer the next N requests with `fail_status`."""
    fail_status: int = 503
    throttle_next: int = 0
    """Answer the next N requests with 429 and `Retry-After: retry_after`."""
    retry_after: int = 1
    slow_next: int = 0
    """Delay the next N responses by `slow_seconds`."""
    slow_seconds: float = 0.0
    malformed_ids: set[str] = field(default_factory=set)
    """Orders served broken (no customer id, a negative quantity), and products (a negative
    price, no name)."""
    duplicate_records: bool = False
    """Serve every record twice in its page."""
    change_after_reads: int | None = None
    """After this many page reads, touch an order already served, so later pages shift."""
    stall_after_reads: int | None = None
    """After this many page reads, hold every request until `FakeCompanyApi.release` is set."""


@dataclass
class FakeCompanyApi:
    """The fake API's state: its orders, credentials, faults, and what it saw."""

    orders: list[dict[str, Any]]
    token: str = "company-secret"
    products: list[dict[str, Any]] = field(default_factory=list)
    """The catalogue, in the company's format (`GET /products`)."""
    auth_kind: AuthKind = "bearer"
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    arrivals: list[float] = field(default_factory=list)
    """When each request came (monotonic seconds)."""
    page_reads: int = 0
    statuses: list[int] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    stalled: int = 0
    """Requests held by `stall_after_reads`."""
    early_retries: int = 0
    """Requests that came back before a 429's Retry-After had passed."""
    _throttled_until: float = 0.0

    def sorted_orders(self) -> list[dict[str, Any]]:
        return sorted(self.orders, key=lambda o: (o["updated_at"], o["id"]))

    def touch(self, order_id: str, **changes: Any) -> None:
        """Update an order (with `changes` to its fields, e.g. `status="cancelled"` or new
        `items`): it moves to the end of the (updated_at, id) order."""
        _touch(self.orders, "id", order_id, changes)

    def touch_product(self, sku: str, **changes: Any) -> None:
        """Update a product (e.g. `price="9.99"`, `stock=0`): it comes again with a later
        `updated_at`."""
        _touch(self.products, "sku", sku, changes)


def _touch(records: list[dict[str, Any]], id_field: str, record_id: str, changes: Any) -> None:
    latest = max(r["updated_at"] for r in records)
    stamp = datetime.fromisoformat(latest) + timedelta(seconds=1)
    for record in records:
        if record[id_field] == record_id:
            record.update(changes)
            record["updated_at"] = stamp.isoformat().replace("+00:00", "Z")


def generate_orders(count: int, seed: int = 7, customers: int = 50) -> list[dict[str, Any]]:
    """Realistic orders in the company's own format (not ours: the mapping bridges them)."""
    rng = random.Random(seed)
    orders = []
    for number in range(count):
        created = EPOCH + timedelta(minutes=number * 7 + rng.randint(0, 5))
        # Some orders share an update second, so the id is needed to order them.
        updated = created + timedelta(minutes=rng.choice((0, 0, 3, 60)))
        customer = rng.randrange(customers)
        items = [
            {
                "sku": f"SKU-{rng.randrange(200):04d}",
                "qty": rng.randint(1, 3),
                "unit_price": f"{rng.randint(100, 9999) / 100:.2f}",
                "title": f"Product {rng.randrange(200)}",
                "category": rng.choice(CATEGORIES),
            }
            for _ in range(rng.randint(1, 4))
        ]
        orders.append(
            {
                "id": f"ORD-{number:06d}",
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "updated_at": updated.replace(second=0).isoformat().replace("+00:00", "Z"),
                "customer": {
                    "id": f"CUST-{customer:05d}",
                    "email": f"customer{customer}@example.com",
                    "age": 18 + customer % 60,
                    "address": {"city": f"City {customer % 9}", "region": REGIONS[customer % 4]},
                },
                "items": items,
                "status": "paid",
            }
        )
    return orders


LEGACY_PREFIX = "CUST-"
"""How the company's old shop system spelled customer ids (C00042 there is CUST-00042)."""


def legacy_customer_id(customer_id: str) -> str:
    return LEGACY_PREFIX + customer_id.removeprefix("C")


def customer_email(customer_id: str) -> str:
    return f"{customer_id.lower()}@example.com"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def orders_from_sample(data: SampleData, legacy_every: int = 10) -> list[dict[str, Any]]:
    """The sample data set's orders in the company's format (the demo's upstream).

    Every `legacy_every`-th order, when its customer has ordered before, carries the customer's
    legacy id with the same e-mail, as an old shop system would: merging by e-mail unifies the
    two, so the recommendations see one customer. 0 turns that off.
    """
    seen: set[str] = set()
    records = []
    for number, order in enumerate(data.orders, start=1):
        customer = order.customer
        raw_id = customer.customer_id
        if legacy_every and raw_id in seen and number % legacy_every == 0:
            raw_id = legacy_customer_id(raw_id)
        seen.add(customer.customer_id)
        records.append(
            {
                "id": order.order_id,
                "created_at": _stamp(order.ordered_at),
                "updated_at": _stamp(order.ordered_at),
                "customer": {
                    "id": raw_id,
                    "email": customer_email(customer.customer_id),
                    "age": customer.age,
                    "gender": customer.gender,
                    "address": {"city": customer.city, "region": customer.region},
                },
                "items": [
                    {
                        "sku": line.product_id,
                        "qty": line.quantity,
                        "unit_price": f"{line.price:.2f}",
                        "title": line.product_name,
                        "category": line.category,
                    }
                    for line in order.lines
                ],
                "status": "paid",
            }
        )
    return records


BRANDS = ("Lumo", "Northwind", "Acme", "Brite", "Oakhill")


def generate_products(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A catalogue in the company's own format (SKU-0000... as `generate_orders` names them)."""
    rng = random.Random(seed)
    products = []
    for number in range(count):
        price = rng.randint(100, 9999) / 100
        updated = EPOCH + timedelta(minutes=number * 3 + rng.randint(0, 2))
        products.append(
            {
                "sku": f"SKU-{number:04d}",
                "title": f"Product {number}",
                "category": rng.choice(CATEGORIES),
                "price": f"{price:.2f}",
                "cost": f"{price * rng.uniform(0.4, 0.8):.2f}",
                "stock": rng.choice((0, 3, 12, 40)),
                "active": rng.random() > 0.05,
                "launched": _stamp(updated - timedelta(days=rng.randint(0, 300))),
                "updated_at": updated.replace(second=0).isoformat().replace("+00:00", "Z"),
                "specs": {"brand": rng.choice(BRANDS), "size": rng.choice(("S", "M", "L"))},
            }
        )
    return products


def products_from_sample(data: SampleData) -> list[dict[str, Any]]:
    """The sample data set's catalogue (never-sold products included) in the company's format."""
    return [
        {
            "sku": product.product_id,
            "title": product.name,
            "category": product.category,
            "price": f"{product.price:.2f}",
            "cost": f"{product.cost:.2f}",
            "stock": product.stock,
            "active": True,
            "launched": _stamp(product.launched_at),
            "updated_at": _stamp(product.launched_at),
            "specs": dict(product.attributes),
        }
        for product in data.catalogue
    ]


def _encode_cursor(record: dict[str, Any], id_field: str = "id") -> str:
    position = json.dumps([record["updated_at"], record[id_field]])
    return base64.urlsafe_b64encode(position.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    updated_at, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return str(updated_at), str(order_id)


def _broken(order: dict[str, Any]) -> dict[str, Any]:
    broken: dict[str, Any] = json.loads(json.dumps(order))
    broken["customer"]["id"] = None
    broken["items"][0]["qty"] = -1
    return broken


def _broken_product(product: dict[str, Any]) -> dict[str, Any]:
    broken: dict[str, Any] = json.loads(json.dumps(product))
    broken["price"] = "-1.00"
    broken["title"] = None
    return broken


def _authorised(api: FakeCompanyApi, request: Request) -> bool:
    if api.auth_kind == "bearer":
        return request.headers.get("authorization") == f"Bearer {api.token}"
    return request.headers.get("x-api-key") == api.token


def create_fake_api(api: FakeCompanyApi) -> FastAPI:
    """The HTTP face of `api`: GET /orders and GET /products."""
    app = FastAPI(title="Fake company order API")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Unauthenticated and uncounted: for whoever starts the API as a process."""
        return {"status": "ok"}

    def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
        api.statuses.append(status)
        return JSONResponse(body, status_code=status, headers=headers)

    async def serve_page(
        request: Request,
        records: list[dict[str, Any]],
        id_field: str,
        key: str,
        broken: Any,
        touch: Any,
        updated_since: str | None,
        cursor: str | None,
        page: int | None,
        per_page: int,
    ) -> JSONResponse:
        """One page of `records` (sorted by updated_at then `id_field`) under `key`, after
        the auth and fault switches every path shares."""
        faults = api.faults
        api.requests += 1
        api.arrivals.append(time.monotonic())
        if not _authorised(api, request):
            return answer(401, {"error": "unauthorised"})
        now = time.monotonic()
        if now < api._throttled_until:
            api.early_retries += 1
            return answer(429, {"error": "too early"}, {"Retry-After": str(faults.retry_after)})
        if faults.throttle_next > 0:
            faults.throttle_next -= 1
            api._throttled_until = now + faults.retry_after
            return answer(429, {"error": "slow down"}, {"Retry-After": str(faults.retry_after)})
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return answer(faults.fail_status, {"error": "upstream trouble"})
        if faults.stall_after_reads is not None and api.page_reads >= faults.stall_after_reads:
            api.stalled += 1
            await api.release.wait()
        if faults.slow_next > 0:
            faults.slow_next -= 1
            await asyncio.sleep(faults.slow_seconds)
        selected = sorted(records, key=lambda r: (r["updated_at"], r[id_field]))
        if updated_since is not None:
            since = _utc(updated_since)
            selected = [o for o in selected if _at_or_after(o["updated_at"], since)]
        size = max(1, min(per_page, 500))
        if page is not None:
            start = (max(page, 1) - 1) * size
            chunk = selected[start : start + size]
            body: dict[str, Any] = {"page": page, "has_more": start + size < len(selected)}
        else:
            if cursor:
                after = _decode_cursor(cursor)
                selected = [o for o in selected if (o["updated_at"], o[id_field]) > after]
            chunk = selected[:size]
            more = len(selected) > size
            body = {"next_cursor": _encode_cursor(chunk[-1], id_field) if more else None}
        chunk = json.loads(json.dumps(chunk))  # the page as read now, whatever changes next
        api.page_reads += 1
        if chunk and api.page_reads == faults.change_after_reads:
            touch(chunk[0][id_field])  # served now, updated before the next page is read
        served = [broken(o) if o[id_field] in faults.malformed_ids else o for o in chunk]
        if faults.duplicate_records:
            served = [r for record in served for r in (record, record)]
        body[key] = served
        return answer(200, body)

    @app.get("/orders")
    async def orders(
        request: Request,
        updated_since: str | None = None,
        cursor: str | None = None,
        page: int | None = None,
        per_page: int = 100,
    ) -> JSONResponse:
        return await serve_page(
            request,
            api.orders,
            "id",
            "orders",
            _broken,
            api.touch,
            updated_since,
            cursor,
            page,
            per_page,
        )

    @app.get("/products")
    async def products(
        request: Request,
        updated_since: str | None = None,
        cursor: str | None = None,
        page: int | None = None,
        per_page: int = 100,
    ) -> JSONResponse:
        return await serve_page(
            request,
            api.products,
            "sku",
            "products",
            _broken_product,
            api.touch_product,
            updated_since,
            cursor,
            page,
            per_page,
        )

    return app


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


def _at_or_after(stamp: str, since: datetime) -> bool:
    """Whether a record is updated at or after `since`; broken stamps are always served."""
    try:
        return _utc(stamp) >= since
    except ValueError:
        return True


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m mgrecs.ingest.fake_company_api`."""
    parser = argparse.ArgumentParser(prog="python -m mgrecs.ingest.fake_company_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--anchor", type=datetime.fromisoformat, default=None, help="ISO time")
    parser.add_argument("--token", default="company-secret")
    parser.add_argument("--auth", choices=("bearer", "api-key"), default="bearer")
    parser.add_argument("--legacy-every", type=int, default=10, help="0: no legacy ids")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the sample data set (`mgrecs.ingest.sample_data`) as the company's API; the demo
    starts it as its own process and runs `mgrecs sync --follow` against it."""
    args = parse_args(argv)
    data = generate(
        seed=args.seed,
        customers=args.customers,
        products=args.products,
        orders=args.orders,
        anchor=args.anchor,
    )
    api = FakeCompanyApi(
        orders_from_sample(data, args.legacy_every),
        token=args.token,
        auth_kind=args.auth,
        products=products_from_sample(data),
    )
    uvicorn.run(create_fake_api(api), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
