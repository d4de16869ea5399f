"""Which model version serves a customer in an experiment (docs/concepts.md,
Feedback and experiments).

The first configured experiment serves: its arm for the customer decides the model version.
When that is the version the current cache generation was scored with, the cache serves as
usual; otherwise the engine answers in real time from the arm's campaign (the user campaign
pinned to the version). Later experiments in the list are only reported (finished ones
kept for their report).
"""

import asyncpg

from mgrecs.common.experiments import Arm, Experiment, pinned_campaign_arn
from mgrecs.common.settings import Settings
from mgrecs.store import cache


def serving_arm(settings: Settings, customer_id: str) -> tuple[Experiment, Arm] | None:
    """The experiment that serves, and the customer's arm in it; None without experiments."""
    if not settings.experiments:
        return None
    experiment = settings.experiments[0]
    return experiment, experiment.assign(customer_id)


def arm_campaign(arm: Arm, settings: Settings) -> str:
    """Where the engine serves the arm's model version in real time."""
    return arm.campaign_arn or pinned_campaign_arn(settings.user_campaign_arn, arm.model_version)


async def cache_model_version(pool: asyncpg.Pool) -> str | None:
    """The model version the current cache generation was scored with (None: none current)."""
    return await cache.current_model_version(pool)
