"""What the self-hosted batch counts for the cost report (docs/cost.md): a retrain's fit
time as training hours, the datasets and artifacts it writes, and an infer's equivalent of
AWS batch jobs (one per recipe) and their inputs (a customer or product each)."""

import asyncpg

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.common import usage
from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER
from support.shop import ACTIVE_CUSTOMERS, BOUGHT_PRODUCTS


async def test_a_self_hosted_retrain_and_infer_count_what_aws_would_bill(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    METER.take("batch")  # what other tests left in this process's meter
    await retrain(pool, settings)
    trained = METER.take("batch").counts
    await infer(pool, settings)
    inferred = METER.take("batch").counts

    assert 0 < trained[(usage.TRAINING_HOURS, "")] < 1
    assert 0 < trained[(usage.DATASET_BYTES, "")] < trained[(usage.STORED_BYTES, "")]
    assert inferred[(usage.BATCH_JOBS, "")] == 2
    assert inferred[(usage.BATCH_INPUTS, "")] == len(ACTIVE_CUSTOMERS) + len(BOUGHT_PRODUCTS)
    assert (usage.TRAINING_HOURS, "") not in inferred
