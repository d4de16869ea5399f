"""Export the three Personalize datasets of a retrain to the artifact store.

Interactions, items and users, as CSV with a header and exactly the columns of the
Personalize schemas the old pipeline imported (`SCHEMAS`, Avro, stored next to them as
`schemas.json`), so an AWS-mode deployment can import them as they are and an operator can
see what a model was trained on. The store streams each file with COPY: constant memory.
"""

import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.artifacts import ArtifactStore
from mgrecs.common.usage import DATASET_BYTES, METER
from mgrecs.store import customers, order_reads, products

SCHEMA_NAMESPACE = "com.amazonaws.personalize.schema"


def _schema(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": SCHEMA_NAMESPACE,
        "fields": fields,
        "version": "1.0",
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "interactions": _schema(
        "Interactions",
        [
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
            {"name": "EVENT_TYPE", "type": "string"},
            {"name": "EVENT_VALUE", "type": "float"},
        ],
    ),
    "items": _schema(
        "Items",
        [
            {"name": "ITEM_ID", "type": "string"},
            {"name": "PRODUCT_NAME", "type": ["null", "string"], "textual": True},
            {"name": "CATEGORY", "type": ["null", "string"], "categorical": True},
            {"name": "PRICE", "type": ["null", "float"]},
        ],
    ),
    "users": _schema(
        "Users",
        [
            {"name": "USER_ID", "type": "string"},
            {"name": "AGE", "type": ["null", "int"]},
            {"name": "GENDER", "type": ["null", "string"], "categorical": True},
            {"name": "LOCATION", "type": ["null", "string"], "categorical": True},
        ],
    ),
}
"""The old pipeline's schemas (its dataset group can be adopted as it is: `mgrecs aws
provision`): the quantity bought is the EVENT_VALUE, the customer's region the LOCATION."""

EXPORTS: dict[str, Callable[[asyncpg.Pool, Path], Awaitable[int]]] = {
    "interactions": order_reads.export_interactions,
    "items": products.export_items,
    "users": customers.export_users,
}
"""Each dataset's writer: the store COPYs it to a CSV file."""


@dataclass(frozen=True)
class ExportedDataset:
    uri: str
    rows: int


async def export_datasets(
    pool: asyncpg.Pool, store: ArtifactStore, run: str, until: datetime | None = None
) -> dict[str, ExportedDataset]:
    """Write `datasets/<run>/{interactions,items,users}.csv` and `schemas.json` to `store`;
    with `until`, the interactions of the orders ingested by then only (AWS mode's cut-off,
    where the next refresh's increment starts)."""
    exported: dict[str, ExportedDataset] = {}
    with tempfile.TemporaryDirectory(prefix="mgrecs-export") as workdir:
        for name, export in EXPORTS.items():
            local = Path(workdir) / f"{name}.csv"
            if name == "interactions":
                rows = await order_reads.export_interactions(pool, local, until=until)
            else:
                rows = await export(pool, local)
            uri = await store.put(local, f"datasets/{run}/{name}.csv")
            METER.add("batch", DATASET_BYTES, local.stat().st_size)  # what an import ingests
            exported[name] = ExportedDataset(uri, rows)
        schemas = Path(workdir) / "schemas.json"
        schemas.write_text(json.dumps(SCHEMAS, indent=2))
        await store.put(schemas, f"datasets/{run}/schemas.json")
    return exported


async def export_increment(
    pool: asyncpg.Pool, store: ArtifactStore, run: str, since: datetime, until: datetime
) -> ExportedDataset:
    """`datasets/<run>/interactions-increment.csv`: the interactions of the orders ingested
    after `since` and by `until` (an incremental import adds them to what Personalize has)."""
    with tempfile.TemporaryDirectory(prefix="mgrecs-export") as workdir:
        local = Path(workdir) / "interactions-increment.csv"
        rows = await order_reads.export_interactions(pool, local, since=since, until=until)
        uri = await store.put(local, f"datasets/{run}/interactions-increment.csv")
        METER.add("batch", DATASET_BYTES, local.stat().st_size)
    return ExportedDataset(uri, rows)
