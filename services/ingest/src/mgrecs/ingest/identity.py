"""Give each order its unified customer id before it is published (README, Customer identities).

Every way in (POST /v1/orders, backfill, the pull connector) calls `unify`, so an order lands
under the same customer whichever way it came.
"""

from typing import Protocol

from mgrecs.common.identity import CustomerKeys, IdentityRules, customer_keys
from mgrecs.common.schemas import Customer, OrderEvent


class Resolver(Protocol):
    """`IdentityResolver` (PostgreSQL) or `InMemoryResolver`: rules plus the mapping."""

    rules: IdentityRules

    async def resolve(self, keys: CustomerKeys) -> str: ...


async def unify(event: OrderEvent, resolver: Resolver) -> OrderEvent:
    """The event under its unified customer id, the upstream id kept in `source_customer_id`.

    E-mail and phone are dropped once used: nothing downstream needs them, and personal data
    should not travel further than it must. Raises ValueError when the id standardizes to
    nothing.
    """
    customer = event.customer
    rules = resolver.rules
    keys = customer_keys(customer.customer_id, customer.email, customer.phone, rules)
    unified = await resolver.resolve(keys) if rules.merge_by else keys.customer_id
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
