"""AWS mode's dataset import jobs: a retrain replaces every dataset (importMode FULL, the
whole export); a refresh adds to them (INCREMENTAL): the interactions of the orders ingested
since the last export, and every item and user again (Personalize replaces a record with the
same id). Each export records its cut-off (`interactions_until` in the version's metrics),
where the next increment starts."""

from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.batch.aws.control import DATASETS, together, wait_import
from mgrecs.batch.export import ExportedDataset, export_increment
from mgrecs.common.artifacts import ArtifactStore
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.store.model_versions import AWS_RECIPE, versions
from mgrecs.store.order_reads import database_now

log = get_logger(__name__)


async def cut_off(pool: asyncpg.Pool) -> datetime:
    """This export's cut-off, taken before it starts: the orders ingested by then."""
    return await database_now(pool)


async def last_cut_off(pool: asyncpg.Pool) -> datetime | None:
    """Where the newest AWS version's export stopped: what Personalize holds since that
    version's imports, whether it was promoted or not. None: no version recorded one (the
    refresh then imports everything, FULL)."""
    newest = await versions(pool, 1, AWS_RECIPE)
    until = newest[0]["metrics"].get("interactions_until") if newest else None
    return datetime.fromisoformat(until) if until else None


async def import_sources(
    pool: asyncpg.Pool,
    store: ArtifactStore,
    version: str,
    datasets: dict[str, ExportedDataset],
    since: datetime | None,
    until: datetime,
) -> tuple[str, dict[str, str]]:
    """The import mode and each dataset's file: FULL and the export when `since` is None,
    else INCREMENTAL with `interactions-increment.csv` (written here) for the interactions,
    or no interactions import when no order came in since."""
    uris = {name: dataset.uri for name, dataset in datasets.items()}
    if since is None:
        return "FULL", uris
    increment = await export_increment(pool, store, version, since, until)
    log.info(
        "aws_increment_exported", version=version, since=since.isoformat(), rows=increment.rows
    )
    if increment.rows == 0:  # no new orders: nothing to add (an empty import would fail)
        del uris["interactions"]
        return "INCREMENTAL", uris
    return "INCREMENTAL", {**uris, "interactions": increment.uri}


async def import_datasets(
    client: Any, settings: Settings, version: str, sources: dict[str, str], mode: str
) -> dict[str, str]:
    """One import job per dataset, all waited for (each logs its ARN and status changes);
    their ARNs by dataset."""
    jobs = {}
    for name, uri in sources.items():
        created = await client.create_dataset_import_job(
            jobName=f"mgrecs-{version}-{name}",
            datasetArn=getattr(settings, DATASETS[name]),
            dataSource={"dataLocation": uri},
            roleArn=settings.personalize_role_arn,
            importMode=mode,
        )
        jobs[name] = str(created["datasetImportJobArn"])
        log.info("aws_import_started", arn=jobs[name], dataset=name, mode=mode, source=uri)
    await together(*(wait_import(client, arn, settings) for arn in jobs.values()))
    return jobs
