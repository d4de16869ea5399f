"""Promote and roll back, each followed at once by an infer tick: the cache then follows the
active model within one infer run instead of at the next scheduled infer (up to
`MGRECS_SCHEDULE_INFER`'s interval, 6 hours by default). Until that infer has written its
generation the old version's cached lists keep serving, and their answers say so
(`model_version` is the cache generation's).

The CLI's `mgrecs promote` and `mgrecs rollback` go through here, as should anything else
that changes the active version outside a retrain (an automatic rollback).

In AWS mode the campaigns serve the active version too: the version becomes active only once
every campaign serves its solution versions (`mgrecs.batch.aws.campaigns.activate`); when one
does not, nothing changes and CampaignUpdateFailed is raised.
"""

from dataclasses import dataclass

import asyncpg

from mgrecs.batch.aws import campaigns
from mgrecs.batch.aws.campaigns import CampaignUpdateFailed
from mgrecs.common.channels import publish_tick
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store import model_versions

__all__ = ["Activated", "CampaignUpdateFailed", "promote", "rollback", "start_infer"]


@dataclass(frozen=True)
class Activated:
    version: str
    """The version now active."""
    infer: ScheduleTick | None
    """The infer tick published for it; None when publishing failed (`error` says why)."""
    error: str | None = None


async def start_infer(settings: Settings, tick_id: str | None = None) -> ScheduleTick:
    """Ask the batch service for an infer now (a tick id runs once: a fresh one unless the
    caller names it, so a retried caller asks once)."""
    return await publish_tick(settings, "infer", tick_id=tick_id)


async def _then_infer(settings: Settings, version: str, tick_id: str | None = None) -> Activated:
    """The version is active already: a broker that is down must not hide that."""
    try:
        return Activated(version, await start_infer(settings, tick_id))
    except Exception as error:  # the promotion stands; the caller reports the missing infer
        return Activated(version, None, f"{type(error).__name__}: {error}")


async def _activate(pool: asyncpg.Pool, settings: Settings, version: str, reason: str) -> None:
    """Make `version` of the mode's lineage active (in AWS mode, its campaigns first)."""
    recipe = model_versions.mode_recipe(settings)
    if recipe != model_versions.AWS_RECIPE:
        await model_versions.promote(pool, version, reason, recipe)
        return
    model = await model_versions.find(pool, version, recipe)
    if model is None:
        raise model_versions.UnknownVersion(f"no {recipe} model version {version!r}")
    await campaigns.activate(pool, settings, model, reason)


async def promote(pool: asyncpg.Pool, settings: Settings, version: str, reason: str) -> Activated:
    """Make `version` of the mode's lineage active, then start an infer. Raises
    UnknownVersion."""
    await _activate(pool, settings, version, reason)
    return await _then_infer(settings, version)


async def rollback(
    pool: asyncpg.Pool,
    settings: Settings,
    reason: str = "rolled back by an operator",
    tick_id: str | None = None,
) -> Activated:
    """Re-activate the version active before the current one, then start an infer (tick
    `tick_id`, fresh if None). Raises UnknownVersion."""
    version = await model_versions.previous_version(pool, model_versions.mode_recipe(settings))
    if version is None:
        raise model_versions.UnknownVersion("no earlier active version to roll back to")
    await _activate(pool, settings, version, reason)
    return await _then_infer(settings, version, tick_id)
