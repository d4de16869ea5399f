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
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.artifacts import ArtifactStore
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
            {"name": "EVENT_TYPE", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
        ],
    ),
    "items": _schema(
        "Items",
        [
            {"name": "ITEM_ID", "type": "string"},
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
            {"name": "REGION", "type": ["null", "string"], "categorical": True},
        ],
    ),
}

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
    pool: asyncpg.Pool, store: ArtifactStore, run: str
) -> dict[str, ExportedDataset]:
    """Write `datasets/<run>/{interactions,items,users}.csv` and `schemas.json` to `store`."""
    exported: dict[str, ExportedDataset] = {}
    with tempfile.TemporaryDirectory(prefix="mgrecs-export") as workdir:
        for name, export in EXPORTS.items():
            local = Path(workdir) / f"{name}.csv"
            rows = await export(pool, local)
            uri = await store.put(local, f"datasets/{run}/{name}.csv")
            exported[name] = ExportedDataset(uri, rows)
        schemas = Path(workdir) / "schemas.json"
        schemas.write_text(json.dumps(SCHEMAS, indent=2))
        await store.put(schemas, f"datasets/{run}/schemas.json")
    return exported
