"""Give each order its unified customer id before it is published (docs/concepts.md,
Customer identities).

Every way in (POST /v1/orders, backfill, the pull connector) calls `unify`, so an order lands
under the same customer whichever way it came.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg

from mgrecs.common.db import create_pool
from mgrecs.common.schemas import Customer, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.identity_rules import IdentityRules, InMemoryResolver, customer_keys
from mgrecs.store.identities import CustomerKeys, IdentityResolver

RESOLVER_POOL_SIZE = 4
"""Connections to PostgreSQL of the identity mapping per process (ingest, connector), for
the pushes resolved at once. PostgreSQL's `max_connections` holds every replica's
(docs/operations.md, Scale)."""


class Resolver(Protocol):
    """`StoredResolver` (PostgreSQL) or `InMemoryResolver`: rules plus the mapping."""

    rules: IdentityRules

    async def resolve(self, keys: CustomerKeys) -> str: ...


class StoredResolver:
    """The rules plus the PostgreSQL mapping (`mgrecs.store.identities`), which knows no rules."""

    def __init__(self, pool: asyncpg.Pool, rules: IdentityRules) -> None:
        self.rules = rules
        self._mapping = IdentityResolver(pool)

    async def resolve(self, keys: CustomerKeys) -> str:
        return await self._mapping.resolve(keys)


async def unify(event: OrderEvent, resolver: Resolver) -> OrderEvent:
    """The event under its unified customer id, the upstream id kept in `source_customer_id`.

    Raises ValueError when the id standardizes to nothing.
    """
    keys = event_keys(event, resolver.rules)
    unified = await resolver.resolve(keys) if resolver.rules.merge_by else keys.customer_id
    return with_unified_id(event, unified)


def event_keys(event: OrderEvent, rules: IdentityRules) -> CustomerKeys:
    """The keys of the event's customer (no database needed); ValueError when the id
    standardizes to nothing."""
    customer = event.customer
    return customer_keys(customer.customer_id, customer.email, customer.phone, rules)


def with_unified_id(event: OrderEvent, unified: str) -> OrderEvent:
    """The event under `unified`, the upstream id kept in `source_customer_id`.

    E-mail and phone are dropped once used: nothing downstream needs them, and personal data
    should not travel further than it must.
    """
    customer = event.customer
    updated = Customer.model_validate(
        {
            **customer.model_dump(),
            "customer_id": unified,
            "source_customer_id": customer.source_customer_id or customer.customer_id,
            "email": None,
            "phone": None,
        }
    )
    return event.model_copy(update={"customer": updated})


@asynccontextmanager
async def open_resolver(settings: Settings) -> AsyncIterator[Resolver | None]:
    """The configured resolver, None when unification is off (settings.unify_customers).

    Only merging needs the PostgreSQL mapping; standardizing ids alone needs no database.
    """
    if not settings.unify_customers:
        yield None
        return
    rules = IdentityRules.from_settings(settings)
    if not rules.merge_by:
        yield InMemoryResolver(rules)
        return
    pool = await create_pool(settings.database_url, max_size=RESOLVER_POOL_SIZE)
    try:
        yield StoredResolver(pool, rules)
    finally:
        await pool.close()
