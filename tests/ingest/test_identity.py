"""Customer identities: each rule of docs/concepts.md, "Customer identities", and the
durable resolver."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.schemas import Customer, OrderEvent, OrderLine
from mgrecs.common.settings import Settings
from mgrecs.ingest.app import create_app
from mgrecs.ingest.backfill import backfill_file
from mgrecs.ingest.identity import unify
from mgrecs.ingest.identity_rules import (
    IdentityRules,
    InMemoryResolver,
    customer_keys,
    normalize_email,
    normalize_phone,
    standardize_customer_id,
)
from mgrecs.store.identities import Alias, CustomerKeys, IdentityResolver
from support.helpers import read_topic, serve

RULES = IdentityRules(prefixes=["CUST-", "C"], merge_by=["email", "phone"], phone_region="GB")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  x-42\t", "x-42"),  # trim
        ("AbC-42", "abc-42"),  # case fold
        ("STRASSE-ß", "strasse-ss"),  # case fold is Unicode case folding, not just lower()
        ("\uff21\uff22-\uff14\uff12", "ab-42"),  # NFKC: full-width letters and digits
        ("CUST-42", "42"),  # known prefix (the longest one that matches)
        ("cust-0042", "42"),  # prefix, then leading zeros
        ("C123", "123"),  # the shorter prefix
        ("00042", "42"),  # leading zeros of a numeric id
        ("0000", "0"),  # ... but "0" stays
        ("0042a", "0042a"),  # not numeric: zeros are part of the id
        ("C", "c"),  # a prefix alone is an id, not an empty one
    ],
)
def test_standardize_customer_id(raw: str, expected: str) -> None:
    assert standardize_customer_id(raw, RULES) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\u3000"])
def test_an_id_that_standardizes_to_nothing_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="empty once standardized"):
        standardize_customer_id(raw, RULES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" C001 ", "C001"), ("\tC001\r\n", "C001"), ("\u00a0C 001\u3000", "C 001"), ("C001", "C001")],
)
def test_schema_ids_are_trimmed_before_validation(raw: str, expected: str) -> None:
    """Every id of an order (and the region) is trimmed, so unification sees " C001 " as C001."""
    order = OrderEvent(
        order_id=raw,
        ordered_at=datetime(2026, 11, 1, tzinfo=UTC),
        customer=Customer(customer_id=raw, region=raw, source_customer_id=raw),
        lines=[OrderLine(product_id=raw, quantity=1, price=Decimal("1.00"))],
    )
    customer = order.customer
    assert {
        order.order_id,
        customer.customer_id,
        customer.region,
        customer.source_customer_id,
        order.lines[0].product_id,
    } == {expected}


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", "C\x00 1", " C\x1f1 ", "C\x1f", "C\n1"])
def test_schema_ids_with_control_characters_or_nothing_left_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="customer_id"):
        Customer(customer_id=raw)
    with pytest.raises(ValidationError, match="product_id"):
        OrderLine(product_id=raw, quantity=1, price=Decimal("1.00"))


def test_rules_can_be_switched_off() -> None:
    rules = IdentityRules(case_fold=False, strip_leading_zeros=False)
    assert standardize_customer_id(" Cust-007 ", rules) == "Cust-007"


def test_rules_come_from_the_settings() -> None:
    settings = Settings(
        customer_id_prefixes="CUST-, C",
        merge_customers_by="email,phone",
        phone_default_region="GB",
    )
    rules = IdentityRules.from_settings(settings)
    assert rules.prefixes == ["cust-", "c"]
    assert rules.merge_by == ["email", "phone"]
    with pytest.raises(ValueError):
        IdentityRules.from_settings(Settings(merge_customers_by="fax"))


def test_email_normalisation() -> None:
    assert normalize_email("  Ann.Lee+shop@GMail.com ", RULES) == "ann.lee+shop@gmail.com"
    gmail = RULES.model_copy(update={"gmail_canonical": True})
    assert normalize_email("Ann.Lee+shop@googlemail.com", gmail) == "annlee@gmail.com"
    assert normalize_email("ann.lee+shop@example.com", gmail) == "ann.lee+shop@example.com"
    assert normalize_email("not an address", RULES) is None


def test_phone_normalisation() -> None:
    assert normalize_phone("+44 20 7946 0958", RULES) == "+442079460958"
    assert normalize_phone("020 7946 0958", RULES) == "+442079460958"
    assert normalize_phone("020 7946 0958", RULES.model_copy(update={"phone_region": None})) is None
    assert normalize_phone("000", RULES) is None
    assert normalize_phone("call me", RULES) is None


def test_contact_details_are_used_only_when_configured() -> None:
    only_email = RULES.model_copy(update={"merge_by": ["email"]})
    keys = customer_keys("C1", "a@example.com", "020 7946 0958", only_email)
    assert keys == CustomerKeys("1", "a@example.com", None)


def _keys(raw_id: str, email: str | None = None, phone: str | None = None) -> CustomerKeys:
    return customer_keys(raw_id, email, phone, RULES)


def test_email_merge_first_id_is_canonical() -> None:
    resolver = InMemoryResolver(RULES)
    assert resolver.resolve_now(_keys("CUST-1", "Ann@Example.com")) == "1"
    assert resolver.resolve_now(_keys("CUST-2", " ann@example.COM")) == "1"
    assert resolver.resolve_now(_keys("CUST-3", "bob@example.com")) == "3"
    assert resolver.resolve_now(_keys("2")) == "1"  # the id alone now finds its customer


def test_phone_merge_across_formats() -> None:
    resolver = InMemoryResolver(RULES)
    assert resolver.resolve_now(_keys("a", phone="+44 20 7946 0958")) == "a"
    assert resolver.resolve_now(_keys("b", phone="020 7946 0958")) == "a"
    assert resolver.resolve_now(_keys("c", phone="not a number")) == "c"


def test_transitive_merge() -> None:
    resolver = InMemoryResolver(RULES)
    assert resolver.resolve_now(_keys("a", email="a@example.com")) == "a"
    assert resolver.resolve_now(_keys("b", email="a@example.com", phone="020 7946 0958")) == "a"
    assert resolver.resolve_now(_keys("c", phone="+442079460958")) == "a"
    assert {alias.value for alias in resolver.members("a")} >= {"a", "b", "c"}


def test_two_known_customers_found_to_be_one_merge_into_the_first() -> None:
    resolver = InMemoryResolver(RULES)
    assert resolver.resolve_now(_keys("a", email="a@example.com")) == "a"
    assert resolver.resolve_now(_keys("b", phone="020 7946 0958")) == "b"
    assert resolver.resolve_now(_keys("z", email="a@example.com", phone="020 7946 0958")) == "a"
    assert resolver.resolve_now(_keys("b")) == "a"


async def _pg_resolve_all(resolver: IdentityResolver) -> list[str]:
    return [
        await resolver.resolve(_keys("a", email="a@example.com")),
        await resolver.resolve(_keys("b", phone="020 7946 0958")),
        await resolver.resolve(_keys("z", email="A@example.com", phone="+44 20 7946 0958")),
        await resolver.resolve(_keys("b")),
        await resolver.resolve(_keys("CUST-0007", email="seven@example.com")),
    ]


async def test_postgres_resolver_makes_the_same_decisions(pool: asyncpg.Pool) -> None:
    memory = InMemoryResolver(RULES)
    expected = [
        memory.resolve_now(_keys("a", email="a@example.com")),
        memory.resolve_now(_keys("b", phone="020 7946 0958")),
        memory.resolve_now(_keys("z", email="A@example.com", phone="+44 20 7946 0958")),
        memory.resolve_now(_keys("b")),
        memory.resolve_now(_keys("CUST-0007", email="seven@example.com")),
    ]
    assert (
        await _pg_resolve_all(IdentityResolver(pool))
        == expected
        == [
            "a",
            "b",
            "a",
            "a",
            "7",
        ]
    )
    assert await IdentityResolver(pool).members("a") == memory.members("a")


async def test_mapping_survives_a_restart(settings: Settings) -> None:
    """Two resolvers on their own pools (as two processes, or before and after a restart)."""
    first_pool = await create_pool(settings.database_url)
    try:
        assert await IdentityResolver(first_pool).resolve(_keys("1", "a@example.com")) == "1"
    finally:
        await first_pool.close()
    second_pool = await create_pool(settings.database_url)
    try:
        second = IdentityResolver(second_pool)
        assert await second.resolve(_keys("2", "A@EXAMPLE.COM")) == "1"
        assert await second.members("1") == [
            Alias("email", "a@example.com"),
            Alias("id", "1"),
            Alias("id", "2"),
        ]
    finally:
        await second_pool.close()


async def test_concurrent_resolvers_agree_on_one_unified_id(settings: Settings) -> None:
    """Twenty new customers with one e-mail, on separate pools at once: one customer."""
    pools = [await create_pool(settings.database_url, max_size=2) for _ in range(4)]
    try:
        resolvers = [IdentityResolver(pool) for pool in pools]
        results = await asyncio.gather(
            *(
                resolvers[n % len(resolvers)].resolve(_keys(f"id-{n}", "shared@example.com"))
                for n in range(20)
            )
        )
        assert len(set(results)) == 1
        members = await resolvers[0].members(results[0])
        assert {a.value for a in members if a.kind == "id"} == {f"id-{n}" for n in range(20)}
    finally:
        for pool in pools:
            await pool.close()


def _order(customer: Customer) -> OrderEvent:
    return OrderEvent(
        order_id="o-1",
        ordered_at=datetime(2026, 11, 20, tzinfo=UTC),
        customer=customer,
        lines=[OrderLine(product_id="p-1", quantity=1, price=Decimal("1.00"))],
    )


async def test_unify_sets_the_unified_id_and_drops_contact_details() -> None:
    resolver = InMemoryResolver(RULES)
    await unify(_order(Customer(customer_id="CUST-01", email="x@example.com")), resolver)
    event = _order(Customer(customer_id="c0002", email="X@example.com", phone="07700 900123"))
    unified = await unify(event, resolver)
    assert unified.customer.customer_id == "1"
    assert unified.customer.source_customer_id == "c0002"
    assert unified.customer.email is None and unified.customer.phone is None
    assert unified.key == b"1"


async def test_unify_without_merges_only_standardizes() -> None:
    rules = RULES.model_copy(update={"merge_by": []})
    resolver = InMemoryResolver(rules)
    first = await unify(_order(Customer(customer_id="CUST-01", email="x@example.com")), resolver)
    second = await unify(_order(Customer(customer_id="CUST-02", email="x@example.com")), resolver)
    assert (first.customer.customer_id, second.customer.customer_id) == ("1", "2")
    assert resolver.aliases == {}


def _unifying(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "unify_customers": True,
            "customer_id_prefixes": "CUST-",
            "merge_customers_by": "email,phone",
            "phone_default_region": "GB",
        }
    )


async def _published(settings: Settings) -> dict[str, tuple[bytes | None, Customer]]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS, settings))
    orders = [(r.key, OrderEvent.model_validate_json(r.value)) for r in records]
    return {order.order_id: (key, order.customer) for key, order in orders}


def _document(order_id: str, customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "ordered_at": "2026-11-20T10:15:00Z",
        "customer": customer,
        "lines": [{"product_id": "p-7", "quantity": 1, "price": "9.90"}],
    }


async def test_posted_orders_land_under_the_unified_customer(settings: Settings) -> None:
    settings = _unifying(settings)
    body = {
        "orders": [
            _document("o-1", {"customer_id": "CUST-0001", "email": "Ann@example.com"}),
            _document("o-2", {"customer_id": "77", "email": "ann@example.com "}),
            _document("o-3", {"customer_id": "88", "phone": "020 7946 0958"}),
            _document("o-4", {"customer_id": "99", "phone": "+44 20 7946 0958"}),
        ]
    }
    async with (
        serve(create_app(settings), settings.ingest_port) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post("/v1/orders", json=body)
        assert response.status_code == 202, response.text
        # Case folding lengthens "ß" to "ss": 200 of them no longer fit an id.
        too_long = {"orders": [_document("o-5", {"customer_id": "ß" * 200})]}
        refused = await client.post("/v1/orders", json=too_long)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == [
            "body",
            "orders",
            0,
            "customer",
            "customer_id",
        ]
        assert "at most 255" in refused.text
    published = await _published(settings)
    assert {order_id: (key, c.customer_id) for order_id, (key, c) in published.items()} == {
        "o-1": (b"1", "1"),
        "o-2": (b"1", "1"),
        "o-3": (b"88", "88"),
        "o-4": (b"88", "88"),
    }
    assert published["o-2"][1].source_customer_id == "77"
    assert all(c.email is None and c.phone is None for _, c in published.values())


async def test_orders_keep_their_customer_ids_when_unification_is_off(settings: Settings) -> None:
    body = {"orders": [_document("o-1", {"customer_id": "CUST-01", "email": "a@example.com"})]}
    async with (
        serve(create_app(settings), settings.ingest_port) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.post("/v1/orders", json=body)).status_code == 202
    (key, customer) = (await _published(settings))["o-1"]
    assert (key, customer.customer_id, customer.source_customer_id) == (b"CUST-01", "CUST-01", None)


CONTACT_CSV = """\
order_id,customer_id,product_id,product_name,category,price,quantity,ordered_at,region,email,phone
O1,CUST-007,P1,Mug,home,4.50,1,2026-11-01T10:00:00Z,north,bo@example.com,
O2,x-9,P1,Mug,home,4.50,1,2026-11-02T10:00:00Z,north,BO@example.com,020 7946 0958
O3,y-1,P2,Tea,beverages,3.20,1,2026-11-03T10:00:00Z,east,,+44 20 7946 0958
O4,z-2,P2,Tea,beverages,3.20,1,2026-11-03T10:00:00Z,east,,
O5,{long_id},P2,Tea,beverages,3.20,1,2026-11-03T10:00:00Z,east,,
"""


async def test_backfill_unifies_customers(settings: Settings, tmp_path: Path) -> None:
    settings = _unifying(settings)
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACT_CSV.format(long_id="ß" * 200), encoding="utf-8")
    summary = await backfill_file(path, settings)
    assert (summary.orders_published, summary.orders_rejected) == (4, 1)
    assert "at most 255" in summary.errors[0]  # "ß" folds to "ss": too long once standardized
    published = await _published(settings)
    assert {order_id: c.customer_id for order_id, (_, c) in published.items()} == {
        "O1": "7",
        "O2": "7",
        "O3": "7",
        "O4": "z-2",
    }
