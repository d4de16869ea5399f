"""`model_versions`: register trained versions, promote one to active, roll back, list them;
and the one definition of the active (served) version that the batch, the engine and the
api all read.

`recipe` names a lineage of versions, not the algorithm: every version the trainer makes is
stored as RECIPE ("cooccurrence") whatever recipe it chose (that one is in
`metrics["recipe"]`); AWS mode's versions are AWS_RECIPE. Each lineage has at most one
active version (index `model_versions_one_active`).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.common.settings import Settings

RECIPE = "cooccurrence"
"""The lineage the trainer registers and the engine serves."""
AWS_RECIPE = "aws-personalize"
"""The recipe of AWS-mode versions (docs/aws.md): their own active one."""


def mode_recipe(settings: Settings) -> str:
    """The recipe whose versions the batch mode trains and serves the cache from."""
    return AWS_RECIPE if settings.batch_mode == "aws" else RECIPE


class NoActiveModel(Exception):
    """Inference was asked for before any model was trained and activated."""


class UnknownVersion(Exception):
    """An operator named a version that does not exist (or cannot be rolled back to)."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    recipe: str
    artifact_uri: str
    n_users: int
    n_items: int
    n_interactions: int
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_at: datetime | None = None


INSERT = """
INSERT INTO model_versions
    (version, recipe, artifact_uri, n_users, n_items, n_interactions, metrics, decision,
     trained_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()))
RETURNING trained_at
"""

ACTIVE_OF = "recipe = {recipe} AND active"
"""The only definition of "the active model": the condition on `model_versions` its row
meets, for the lineage `{recipe}` (a placeholder such as `$1`, or a quoted literal)."""

ACTIVE = f"""
SELECT version, recipe, artifact_uri, n_users, n_items, n_interactions, metrics, trained_at
FROM model_versions
WHERE {ACTIVE_OF.format(recipe="$1")}
"""
"""The active version of recipe $1."""

SERVED_VERSION = "SELECT version FROM model_versions WHERE " + ACTIVE_OF
"""The version real-time answers come from (ACTIVE's of a recipe: RECIPE's, or AWS_RECIPE's
in AWS mode), as a subquery for other statements: `{recipe}` is the statement's parameter
holding the recipe (`SERVED_VERSION.format(recipe="$2")`)."""

VERSION = """
SELECT version, recipe, artifact_uri, n_users, n_items, n_interactions, metrics, trained_at
FROM model_versions
WHERE version = $1 AND recipe = $2
"""

VERSIONS = """
SELECT version, trained_at, active, promoted_at, decision, metrics, n_users, n_items,
       n_interactions
FROM model_versions WHERE recipe = $1 ORDER BY trained_at DESC, version DESC LIMIT $2
"""

EVERY_RECIPE = """
SELECT version, recipe, trained_at, active, promoted_at, decision, metrics
FROM model_versions
ORDER BY trained_at DESC, version DESC
LIMIT $1
"""

METRICS_OF = "SELECT version, metrics FROM model_versions WHERE version = ANY($1::text[])"

NDCG_HISTORY = """
SELECT version, (metrics->'validation'->'chosen'->>'ndcg@10')::float8 AS ndcg
FROM model_versions
WHERE trained_at <= $1 AND recipe = $3 AND metrics->'validation' IS NOT NULL
  AND metrics->'validation' <> 'null'::jsonb
ORDER BY trained_at DESC, version DESC
LIMIT $2
"""


async def _activate(conn: asyncpg.Connection, recipe: str, version: str, reason: str) -> None:
    """Make `version` the only active one of `recipe` (caller holds a transaction)."""
    # Serialise concurrent promotions of one recipe (the one-active index would otherwise
    # make the slower one fail).
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"promote:{recipe}")
    await conn.execute(
        f"UPDATE model_versions SET active = FALSE WHERE {ACTIVE_OF.format(recipe='$1')}", recipe
    )
    updated = await conn.execute(
        "UPDATE model_versions SET active = TRUE, promoted_at = now(), decision = $3 "
        "WHERE recipe = $1 AND version = $2",
        recipe,
        version,
        reason,
    )
    if updated == "UPDATE 0":
        raise UnknownVersion(f"no {recipe} model version {version!r}")


async def register(
    pool: asyncpg.Pool, model: ModelVersion, *, promote: bool, reason: str
) -> ModelVersion:
    """Record a trained version (trained now, unless `model.trained_at` says when); make it
    the active one when `promote` (one transaction)."""
    async with pool.acquire() as conn, conn.transaction():
        trained_at = await conn.fetchval(
            INSERT,
            model.version,
            model.recipe,
            model.artifact_uri,
            model.n_users,
            model.n_items,
            model.n_interactions,
            model.metrics,
            reason,
            model.trained_at,
        )
        if promote:
            await _activate(conn, model.recipe, model.version, reason)
    return replace(model, trained_at=trained_at)


async def promote(pool: asyncpg.Pool, version: str, reason: str, recipe: str = RECIPE) -> None:
    """Make `version` the active one (an operator's decision or the gate's)."""
    async with pool.acquire() as conn, conn.transaction():
        await _activate(conn, recipe, version, reason)


async def set_decision(pool: asyncpg.Pool, version: str, reason: str, recipe: str) -> None:
    """Replace a version's recorded decision (a promotion that could not be carried out)."""
    await pool.execute(
        "UPDATE model_versions SET decision = $3 WHERE recipe = $1 AND version = $2",
        recipe,
        version,
        reason,
    )


async def previous_version(pool: asyncpg.Pool, recipe: str = RECIPE) -> str | None:
    """The version that was active before the current one (the one a rollback returns to)."""
    previous = await pool.fetchval(
        """
        SELECT version FROM model_versions
        WHERE recipe = $1 AND NOT active AND promoted_at IS NOT NULL
        ORDER BY promoted_at DESC LIMIT 1
        """,
        recipe,
    )
    return None if previous is None else str(previous)


async def rollback(
    pool: asyncpg.Pool, recipe: str = RECIPE, reason: str = "rolled back by an operator"
) -> str:
    """Re-activate the version that was active before the current one; returns it."""
    previous = await previous_version(pool, recipe)
    if previous is None:
        raise UnknownVersion("no earlier active version to roll back to")
    await promote(pool, previous, reason, recipe)
    return previous


async def versions(
    pool: asyncpg.Pool, limit: int = 20, recipe: str = RECIPE
) -> list[asyncpg.Record]:
    """The newest versions with their status and metrics, newest first."""
    return list(await pool.fetch(VERSIONS, recipe, limit))


async def every_recipe(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """The newest versions of every recipe, newest first (the status page)."""
    return list(await pool.fetch(EVERY_RECIPE, limit))


async def active_metrics(pool: asyncpg.Pool, recipe: str = RECIPE) -> dict[str, Any] | None:
    """The active version's metrics, or None when no version is active."""
    row = await pool.fetchrow(ACTIVE, recipe)
    return None if row is None else dict(row["metrics"])


async def find_active(pool: asyncpg.Pool, recipe: str = RECIPE) -> ModelVersion | None:
    """The active version of `recipe` (RECIPE: the one the engine serves), if any."""
    row = await pool.fetchrow(ACTIVE, recipe)
    return None if row is None else ModelVersion(**dict(row))


async def active_model(pool: asyncpg.Pool, recipe: str = RECIPE) -> ModelVersion:
    """`find_active`, raising NoActiveModel before the first retrain."""
    model = await find_active(pool, recipe)
    if model is None:
        raise NoActiveModel(f"no active {recipe} model: run a retrain tick first")
    return model


async def served_version(
    pool: asyncpg.Pool | asyncpg.Connection, recipe: str = RECIPE
) -> str | None:
    """The version real-time answers come from: the active one of `recipe` (the engine's by
    default; AWS mode's campaigns serve AWS_RECIPE's). None before the first retrain."""
    row = await pool.fetchrow(ACTIVE, recipe)
    return None if row is None else str(row["version"])


async def find(pool: asyncpg.Pool, version: str, recipe: str = RECIPE) -> ModelVersion | None:
    """Version `version` of `recipe`, active or not."""
    row = await pool.fetchrow(VERSION, version, recipe)
    return None if row is None else ModelVersion(**dict(row))


async def metrics_of(pool: asyncpg.Pool, versions: list[str]) -> dict[str, dict[str, Any]]:
    """The stored metrics of each of `versions` that exists."""
    rows = await pool.fetch(METRICS_OF, versions)
    return {row["version"]: row["metrics"] for row in rows}


async def ndcg_history(
    pool: asyncpg.Pool, until: datetime, limit: int, recipe: str
) -> list[tuple[str, float]]:
    """Validation NDCG@10 of the newest `limit` versions of `recipe` trained by `until`
    (newest first; versions without a validation figure are left out)."""
    rows = await pool.fetch(NDCG_HISTORY, until, limit, recipe)
    return [(row["version"], row["ndcg"]) for row in rows]
