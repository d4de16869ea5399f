"""Business rules (`rules`): their rows, who made and changed them, and the products each
enabled rule's target matches in the catalogue, which is what serving needs.

A target is a JSON object whose conditions all hold for a matched product: `products` (ids),
`categories`, `min_price` / `max_price` (inclusive; a product without a price matches no
bound), `out_of_stock` (true: products not in stock), `inactive` (true: products withdrawn),
`attributes` (an object the product's attributes contain, e.g. {"brand": "Acme"}). Pins and
promotions name their products (`products`, in order) and are not resolved against the
catalogue's other columns.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.common import rules as written

TARGET_KEYS = ("products", "categories", "min_price", "max_price", "out_of_stock", "inactive")
"""Target conditions besides `attributes`."""


@dataclass(frozen=True)
class RuleFields:
    """What a merchandiser says about a rule (everything but who and when)."""

    kind: str
    name: str = ""
    region: str | None = None
    target: Mapping[str, Any] = field(default_factory=dict)
    factor: float | None = None
    slot: int | None = None
    share: float | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    enabled: bool = True


@dataclass(frozen=True)
class StoredRule:
    rule_id: int
    fields: RuleFields
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class ResolvedRule:
    """An enabled rule as serving applies it (the fields of
    `mgrecs.engine.business_rules.BusinessRule`)."""

    rule_id: int
    kind: str
    products: frozenset[str]
    ordered: tuple[str, ...]
    region: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    factor: float
    slot: int
    share: float


COLUMNS = (
    "kind, name, region, target, factor, slot, share, starts_at, ends_at, enabled, "
    "created_by, created_at, updated_by, updated_at"
)

INSERT = f"""
INSERT INTO rules (kind, name, region, target, factor, slot, share, starts_at, ends_at,
                   enabled, created_by, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
RETURNING rule_id, {COLUMNS}
"""

UPDATE = f"""
UPDATE rules SET kind = $2, name = $3, region = $4, target = $5, factor = $6, slot = $7,
    share = $8, starts_at = $9, ends_at = $10, enabled = $11, updated_by = $12,
    updated_at = now()
WHERE rule_id = $1
RETURNING rule_id, {COLUMNS}
"""

SELECT_ONE = f"SELECT rule_id, {COLUMNS} FROM rules WHERE rule_id = $1"
SELECT_ALL = f"SELECT rule_id, {COLUMNS} FROM rules WHERE enabled OR $1 ORDER BY rule_id"

VERSION = "SELECT count(*), max(updated_at), max(rule_id) FROM rules WHERE enabled"
"""Changes whenever an enabled rule is created, changed or disabled (updated_at moves)."""

# Products matching a target: every given condition holds.
MATCHING = """
SELECT product_id FROM products
WHERE ($1::text[] IS NULL OR product_id = ANY($1::text[]))
  AND ($2::text[] IS NULL OR category = ANY($2::text[]))
  AND ($3::float8 IS NULL OR price >= $3::float8)
  AND ($4::float8 IS NULL OR price <= $4::float8)
  AND (NOT $5::bool OR NOT in_stock)
  AND (NOT $6::bool OR NOT active)
  AND ($7::jsonb IS NULL OR attributes @> $7::jsonb)
"""

UNKNOWN_PRODUCTS = """
SELECT p FROM unnest($1::text[]) AS p
WHERE NOT EXISTS (SELECT 1 FROM products WHERE product_id = p)
"""
UNKNOWN_CATEGORIES = """
SELECT c FROM unnest($1::text[]) AS c
WHERE NOT EXISTS (SELECT 1 FROM products WHERE category = c)
"""


def _values(fields: RuleFields) -> tuple[Any, ...]:
    return (
        fields.kind,
        fields.name,
        fields.region,
        dict(fields.target),
        fields.factor,
        fields.slot,
        fields.share,
        fields.starts_at,
        fields.ends_at,
        fields.enabled,
    )


def _stored(row: asyncpg.Record) -> StoredRule:
    target = row["target"]
    if isinstance(target, str):  # a pool without the JSON codec
        target = json.loads(target)
    return StoredRule(
        rule_id=row["rule_id"],
        fields=RuleFields(
            kind=row["kind"],
            name=row["name"],
            region=row["region"],
            target=target,
            factor=row["factor"],
            slot=row["slot"],
            share=row["share"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            enabled=row["enabled"],
        ),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
    )


async def create_rule(pool: asyncpg.Pool, fields: RuleFields, actor: str) -> StoredRule:
    row = await pool.fetchrow(INSERT, *_values(fields), actor)
    return _stored(row)


async def update_rule(
    pool: asyncpg.Pool, rule_id: int, fields: RuleFields, actor: str
) -> StoredRule | None:
    """The rule with these fields (None: no such rule)."""
    row = await pool.fetchrow(UPDATE, rule_id, *_values(fields), actor)
    return None if row is None else _stored(row)


async def rule(pool: asyncpg.Pool, rule_id: int) -> StoredRule | None:
    row = await pool.fetchrow(SELECT_ONE, rule_id)
    return None if row is None else _stored(row)


async def rules(pool: asyncpg.Pool, include_disabled: bool = True) -> list[StoredRule]:
    """Every rule (or the enabled ones), oldest first."""
    return [_stored(row) for row in await pool.fetch(SELECT_ALL, include_disabled)]


async def version(pool: asyncpg.Pool) -> tuple[Any, ...]:
    """A value that changes whenever the set of enabled rules does (cheap to read)."""
    row = await pool.fetchrow(VERSION)
    return tuple(row)


async def unknown_products(pool: asyncpg.Pool, product_ids: Sequence[str]) -> list[str]:
    """Those of `product_ids` the catalogue does not know, in their order."""
    if not product_ids:
        return []
    return [row[0] for row in await pool.fetch(UNKNOWN_PRODUCTS, list(product_ids))]


async def unknown_categories(pool: asyncpg.Pool, categories: Sequence[str]) -> list[str]:
    """Those of `categories` no product of the catalogue has."""
    if not categories:
        return []
    return [row[0] for row in await pool.fetch(UNKNOWN_CATEGORIES, list(categories))]


async def matching_products(pool: asyncpg.Pool, target: Mapping[str, Any]) -> frozenset[str]:
    """The catalogue products meeting every condition of `target` (none for an empty one)."""
    if not any(
        target.get(key) not in (None, False, [], {}) for key in (*TARGET_KEYS, "attributes")
    ):
        return frozenset()
    products = target.get("products") or None
    categories = target.get("categories") or None
    attributes = target.get("attributes") or None
    rows = await pool.fetch(
        MATCHING,
        list(products) if products else None,
        list(categories) if categories else None,
        target.get("min_price"),
        target.get("max_price"),
        bool(target.get("out_of_stock")),
        bool(target.get("inactive")),
        dict(attributes) if attributes else None,
    )
    return frozenset(row[0] for row in rows)


async def resolve(pool: asyncpg.Pool, rule_id: int, f: RuleFields) -> ResolvedRule:
    """A rule as serving applies it: filters' and boosts' targets resolved in the catalogue."""
    named = tuple(dict.fromkeys(f.target.get("products") or ()))
    products = (
        frozenset(named)
        if f.kind in ("pin", "promotion")
        else await matching_products(pool, f.target)
    )
    return ResolvedRule(
        rule_id=rule_id,
        kind=f.kind,
        products=products,
        ordered=named,
        region=f.region,
        starts_at=f.starts_at,
        ends_at=f.ends_at,
        factor=f.factor if f.factor is not None else 1.0,
        slot=f.slot if f.slot is not None else 1,
        share=f.share if f.share is not None else 0.0,
    )


async def resolved_rules(pool: asyncpg.Pool) -> list[ResolvedRule]:
    """Every enabled rule, resolved (`resolve`)."""
    return [
        await resolve(pool, stored.rule_id, stored.fields)
        for stored in await rules(pool, include_disabled=False)
    ]


async def catalogue_problem(pool: asyncpg.Pool, target: written.Target) -> str | None:
    """What the catalogue says against a target: `field: unknown ...` (None: nothing)."""
    if unknown := await unknown_products(pool, target.products or []):
        return f"target.products: unknown products {', '.join(unknown[:10])}"
    if unknown := await unknown_categories(pool, target.categories or []):
        return f"target.categories: unknown categories {', '.join(unknown[:10])}"
    return None


def fields_of(rule: written.RuleFields) -> RuleFields:
    """A validated rule as stored (the target without its defaults)."""
    return RuleFields(
        kind=rule.kind,
        name=rule.name,
        region=rule.region,
        target=rule.target.model_dump(mode="json", exclude_defaults=True),
        factor=rule.factor,
        slot=rule.slot,
        share=rule.share,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        enabled=rule.enabled,
    )


def written_of(fields: RuleFields) -> dict[str, Any]:
    """A stored rule's fields as written (to validate a change against the whole)."""
    return {
        "kind": fields.kind,
        "name": fields.name,
        "region": fields.region,
        "target": dict(fields.target),
        "factor": fields.factor,
        "slot": fields.slot,
        "share": fields.share,
        "starts_at": fields.starts_at,
        "ends_at": fields.ends_at,
        "enabled": fields.enabled,
    }
