"""The customer-identity mapping (`customer_identities`, `customer_aliases`): durable across
restarts and shared by processes.

A known customer costs one read. Anything new (an alias never seen, or two customers found to be
one) is decided under a transaction-scoped advisory lock, so concurrent resolvers, in one
process or many, agree on a single unified id; `choose_unified` makes the decision.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import asyncpg

AliasKind = Literal["id", "email", "phone"]

IDENTITY_LOCK = 0x6D67_7265_6373_0004
"""Advisory lock key serialising changes to the mapping (reads never take it)."""

_LOOKUP = """
    SELECT a.alias_kind, a.alias_value, a.unified_customer_id, i.seq
    FROM customer_aliases a
    JOIN customer_identities i USING (unified_customer_id)
    JOIN unnest($1::text[], $2::text[]) AS k(kind, value)
      ON a.alias_kind = k.kind AND a.alias_value = k.value
"""


@dataclass(frozen=True, order=True)
class Alias:
    """One key a customer is known by: its standardized id, an e-mail or a phone number."""

    kind: AliasKind
    value: str


@dataclass(frozen=True)
class CustomerKeys:
    """The standardized id and the normalised contact details the rules say to merge by."""

    customer_id: str
    email: str | None = None
    phone: str | None = None

    @property
    def aliases(self) -> list[Alias]:
        found = [Alias("id", self.customer_id)]
        if self.email:
            found.append(Alias("email", self.email))
        if self.phone:
            found.append(Alias("phone", self.phone))
        return found


def choose_unified(
    keys: CustomerKeys, known: Mapping[Alias, str], first_seen: Mapping[str, int]
) -> tuple[str, set[str]]:
    """The unified id for `keys`, and the other customers it joins (to be merged into it).

    `known` maps aliases already seen to their unified id; `first_seen` orders unified ids by
    creation. A new customer is its own id; otherwise the earliest customer reached wins.
    """
    reached = {known[alias] for alias in keys.aliases if alias in known}
    if not reached:
        return keys.customer_id, set()
    winner = min(reached, key=lambda unified: (first_seen.get(unified, 0), unified))
    return winner, reached - {winner}


class IdentityResolver:
    """Maps a customer's keys to its unified id, remembering every decision in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def resolve(self, keys: CustomerKeys) -> str:
        aliases = keys.aliases
        kinds: list[str] = [alias.kind for alias in aliases]
        values = [alias.value for alias in aliases]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_LOOKUP, kinds, values)
            owners = {row["unified_customer_id"] for row in rows}
            if len(rows) == len(aliases) and len(owners) == 1:
                return str(owners.pop())
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", IDENTITY_LOCK)
                return await self._decide(conn, keys, kinds, values)

    async def _decide(
        self, conn: asyncpg.Connection, keys: CustomerKeys, kinds: list[str], values: list[str]
    ) -> str:
        rows = await conn.fetch(_LOOKUP, kinds, values)
        known = {
            Alias(row["alias_kind"], row["alias_value"]): row["unified_customer_id"] for row in rows
        }
        first_seen = {row["unified_customer_id"]: row["seq"] for row in rows}
        winner, merged = choose_unified(keys, known, first_seen)
        await conn.execute(
            "INSERT INTO customer_identities (unified_customer_id) VALUES ($1)"
            " ON CONFLICT DO NOTHING",
            winner,
        )
        if merged:
            await conn.execute(
                "UPDATE customer_aliases SET unified_customer_id = $1"
                " WHERE unified_customer_id = ANY($2::text[])",
                winner,
                sorted(merged),
            )
            await conn.execute(
                "UPDATE customer_identities SET merged_into = $1"
                " WHERE unified_customer_id = ANY($2::text[])",
                winner,
                sorted(merged),
            )
        await conn.execute(
            """
            INSERT INTO customer_aliases (alias_kind, alias_value, unified_customer_id)
            SELECT * FROM unnest($1::text[], $2::text[], array_fill($3::text, ARRAY[$4::int]))
            ON CONFLICT (alias_kind, alias_value)
            DO UPDATE SET unified_customer_id = EXCLUDED.unified_customer_id
            """,
            kinds,
            values,
            winner,
            len(kinds),
        )
        return winner

    async def members(self, unified: str) -> list[Alias]:
        """Every alias of a unified customer (for the operator and the tests)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT alias_kind, alias_value FROM customer_aliases"
                " WHERE unified_customer_id = $1 ORDER BY 1, 2",
                unified,
            )
        return [Alias(row["alias_kind"], row["alias_value"]) for row in rows]


async def count_aliases_like(pool: asyncpg.Pool, pattern: str) -> int:
    """How many known aliases have a value matching the LIKE `pattern`."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM customer_aliases WHERE alias_value LIKE $1", pattern
    )
    return count
