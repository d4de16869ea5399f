"""The model registry (`model_versions`): register a trained model, find the active one."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

RECIPE = "cooccurrence"


class NoActiveModel(Exception):
    """Inference was asked for before any model was trained and activated."""


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


ACTIVATE = """
INSERT INTO model_versions
    (version, recipe, artifact_uri, n_users, n_items, n_interactions, metrics, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE)
RETURNING trained_at
"""

ACTIVE = """
SELECT version, recipe, artifact_uri, n_users, n_items, n_interactions, metrics, trained_at
FROM model_versions
WHERE recipe = $1 AND active
"""


async def register_active(pool: asyncpg.Pool, model: ModelVersion) -> ModelVersion:
    """Insert `model` as the only active version of its recipe, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        # Serialise concurrent promotions of one recipe (the one-active index would
        # otherwise make the slower one fail).
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"promote:{model.recipe}")
        await conn.execute(
            "UPDATE model_versions SET active = FALSE WHERE recipe = $1 AND active", model.recipe
        )
        trained_at = await conn.fetchval(
            ACTIVATE,
            model.version,
            model.recipe,
            model.artifact_uri,
            model.n_users,
            model.n_items,
            model.n_interactions,
            model.metrics,
        )
    return replace(model, trained_at=trained_at)


async def active_model(pool: asyncpg.Pool, recipe: str = RECIPE) -> ModelVersion:
    row = await pool.fetchrow(ACTIVE, recipe)
    if row is None:
        raise NoActiveModel(f"no active {recipe} model: run a retrain tick first")
    return ModelVersion(**dict(row))
