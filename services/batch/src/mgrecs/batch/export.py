"""Export the three Personalize datasets of a retrain to the artifact store.

Interactions, items and users, as CSV with a header and exactly the columns of the
Personalize schemas the old pipeline imported (`SCHEMAS`, Avro, stored next to them as
`schemas.json`), so an AWS-mode deployment can import them as they are and an operator can
see what a model was trained on. PostgreSQL streams each file with COPY: constant memory.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.artifacts import ArtifactStore

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

QUERIES = {
    "interactions": """
        SELECT o.customer_id AS "USER_ID", oi.product_id AS "ITEM_ID", 'purchase' AS "EVENT_TYPE",
               floor(extract(epoch FROM o.ordered_at))::bigint AS "TIMESTAMP"
        FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
        ORDER BY o.ordered_at, o.order_id, oi.line_no""",
    "items": """
        SELECT product_id AS "ITEM_ID", category AS "CATEGORY", price AS "PRICE"
        FROM products ORDER BY product_id""",
    "users": """
        SELECT customer_id AS "USER_ID", age AS "AGE", gender AS "GENDER", region AS "REGION"
        FROM customers ORDER BY customer_id""",
}


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
        for name, query in QUERIES.items():
            local = Path(workdir) / f"{name}.csv"
            async with pool.acquire() as conn:
                status = await conn.copy_from_query(query, output=local, format="csv", header=True)
            uri = await store.put(local, f"datasets/{run}/{name}.csv")
            exported[name] = ExportedDataset(uri, int(status.rsplit(" ", 1)[-1]))
        schemas = Path(workdir) / "schemas.json"
        schemas.write_text(json.dumps(SCHEMAS, indent=2))
        await store.put(schemas, f"datasets/{run}/schemas.json")
    return exported
