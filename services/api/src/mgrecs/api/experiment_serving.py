"""Which model version serves a customer in an experiment (docs/concepts.md,
Feedback and experiments).

The first configured experiment serves: its arm for the customer decides what serves. Every
model arm is served the same way, so that the comparison measures the models and not the
way they were served: the engine answers in real time from the arm's campaign (the user
campaign pinned to the arm's version), the cache is never read (it holds one version's lists
only), and when the engine has no answer every arm falls back to popularity alike. A holdout
arm gets popularity or nothing. Later experiments in the list are only reported (finished
ones kept for their report).

A customer's arm depends only on the experiment id and the customer id (a stable hash), so
every API instance, on every request, puts a customer in the same arm without storing it.
"""

import hashlib

from mgrecs.common.experiments import Arm, Experiment
from mgrecs.common.settings import Settings


def serving_arm(settings: Settings, customer_id: str) -> tuple[Experiment, Arm] | None:
    """The experiment that serves, and the customer's arm in it; None without experiments."""
    if not settings.experiments:
        return None
    experiment = settings.experiments[0]
    return experiment, assign(experiment, customer_id)


def assign(experiment: Experiment, customer_id: str) -> Arm:
    """The customer's arm: the one whose cumulative share range holds its bucket."""
    point = bucket(experiment.id, customer_id)
    upper = 0.0
    for arm in experiment.arms:
        upper += arm.share
        if point < upper:
            return arm
    return experiment.arms[-1]  # shares summing to 1 - tolerance: the gap goes to the last


def bucket(experiment_id: str, customer_id: str) -> float:
    """A point in [0, 1), uniform over customers, fixed per experiment and customer (and
    different per experiment, so two experiments split the customers independently)."""
    digest = hashlib.blake2b(f"{experiment_id}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pinned_campaign_arn(user_campaign_arn: str, model_version: str) -> str:
    """The user campaign's ARN pinned to one model version (the self-hosted engine's form)."""
    return f"{user_campaign_arn}/{model_version}"


def arm_campaign(arm: Arm, settings: Settings) -> str:
    """Where the engine serves the arm's model version in real time (a model arm's)."""
    assert arm.model_version is not None, f"arm {arm.name} is a holdout"
    return arm.campaign_arn or pinned_campaign_arn(settings.user_campaign_arn, arm.model_version)
