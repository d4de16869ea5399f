"""The campaigns follow the active AWS version: before a version becomes active (a retrain's
or refresh's promotion, `mgrecs promote`, a rollback), each campaign is pointed at that
version's solution version with UpdateCampaign and waited on until it serves it, so the
cache, the live answers and the ranking come from one model version.

A version holds one solution version per solution (`SOLUTION_VERSIONS`: user-personalization,
similar-items and, when configured, personalized-ranking); a campaign whose solution version
the version does not name (an older version without a ranking one) is left as it is. A
campaign that does not exist yet (`mgrecs aws provision` leaves it `pending` before the first
trained version) is created under its configured ARN's name. The updates run side by side;
when one fails, the campaigns already moved are pointed back to `fallback` (the version still
active) and CampaignUpdateFailed is raised, so the caller does not mark the version active.
"""

import asyncio
from typing import Any

import asyncpg
from botocore.exceptions import ClientError

from mgrecs.batch.aws.control import AwsModeMisconfigured, wait_campaign
from mgrecs.common.logging import get_logger
from mgrecs.common.personalize import control_client
from mgrecs.common.settings import Settings
from mgrecs.store import model_versions
from mgrecs.store.model_versions import ModelVersion

log = get_logger(__name__)

SOLUTION_VERSIONS = {
    "user_campaign_arn": "user_solution_version_arn",
    "similar_campaign_arn": "similar_solution_version_arn",
    "ranking_campaign_arn": "ranking_solution_version_arn",
}
"""Each campaign's setting and the key of a version's metrics naming its solution version."""

ACTIVATION_LOCK = "aws-campaigns"
"""The advisory lock (session level, waited for) an activation holds while it moves them."""


class CampaignUpdateFailed(Exception):
    """A campaign did not come to serve the version (its reason is in the message)."""


def targets(settings: Settings, model: ModelVersion) -> dict[str, str]:
    """Campaign ARN -> the solution version of `model` it should serve."""
    return {
        str(getattr(settings, setting)): str(model.metrics[key])
        for setting, key in SOLUTION_VERSIONS.items()
        if model.metrics.get(key)
    }


async def _current(client: Any, campaign: str) -> str | None:
    """The solution version the campaign serves; None when it does not exist."""
    try:
        found = await client.describe_campaign(campaignArn=campaign)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return str(found["campaign"]["solutionVersionArn"])


async def _point(client: Any, settings: Settings, campaign: str, solution_version: str) -> bool:
    """Make `campaign` serve `solution_version` and wait until it does; False when it
    already did (nothing called)."""
    current = await _current(client, campaign)
    if current == solution_version:
        return False
    if current is None:
        name = campaign.rsplit("campaign/", 1)[-1]
        created = await client.create_campaign(
            name=name, solutionVersionArn=solution_version, minProvisionedTPS=1
        )
        if created["campaignArn"] != campaign:
            raise AwsModeMisconfigured(
                f"campaign {name} was created as {created['campaignArn']}, not {campaign}"
                " as configured: set its MGRECS_*_CAMPAIGN_ARN to it"
            )
        log.info("aws_campaign_created", arn=campaign, solution_version=solution_version)
    else:
        await client.update_campaign(campaignArn=campaign, solutionVersionArn=solution_version)
        log.info(
            "aws_campaign_update_started",
            arn=campaign,
            solution_version=solution_version,
            previous=current,
        )
    await wait_campaign(client, campaign, settings)
    return True


async def deploy(settings: Settings, model: ModelVersion, fallback: ModelVersion | None) -> None:
    """Point every campaign at `model`'s solution versions, waiting until each serves it.
    Raises CampaignUpdateFailed (after pointing the moved ones back to `fallback`'s) when
    one fails; AwsModeMisconfigured when a created campaign's ARN is not the configured one."""
    wanted = targets(settings, model)
    async with control_client(settings) as client:
        outcomes = await asyncio.gather(
            *(_point(client, settings, arn, version) for arn, version in wanted.items()),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if not failures:
            log.info("aws_campaigns_deployed", version=model.version, campaigns=wanted)
            return
        moved = [arn for arn, o in zip(wanted, outcomes, strict=True) if o is True]
        back = {} if fallback is None else targets(settings, fallback)
        for arn in moved:
            if arn in back:
                try:
                    await _point(client, settings, arn, back[arn])
                except Exception as error:  # the first failure is the one to report
                    log.error("aws_campaign_restore_failed", arn=arn, error=str(error))
    first = failures[0]
    if isinstance(first, AwsModeMisconfigured):
        raise first
    raise CampaignUpdateFailed(
        f"the campaigns were not moved to version {model.version}"
        f" ({'back on ' + fallback.version if fallback else 'none was active'}):"
        f" {type(first).__name__}: {first}"
    ) from first


async def activate(
    pool: asyncpg.Pool, settings: Settings, model: ModelVersion, reason: str
) -> None:
    """Make `model` the active AWS version once the campaigns serve it (`deploy`, falling back
    to the active version's). When they do not, `model` is not marked active, its decision
    says why, and the error is raised. One activation at a time across instances (a retrain's
    promotion, a rollback): the next waits, then moves the campaigns from what is active then
    (two at once would have a campaign's second update refused while the first runs)."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", ACTIVATION_LOCK)
        try:
            fallback = await model_versions.find_active(pool, model.recipe)
            try:
                await deploy(settings, model, fallback)
            except (CampaignUpdateFailed, AwsModeMisconfigured) as error:
                await model_versions.set_decision(
                    pool, model.version, f"{reason}; not promoted: {error}", model.recipe
                )
                raise
            await model_versions.promote(pool, model.version, reason, model.recipe)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", ACTIVATION_LOCK)
