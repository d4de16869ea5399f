"""A retrain exports the three Personalize datasets to the artifact store: a directory by
default, S3 through aioboto3 (against a moto server, the S3 API's fake)."""

import asyncio
import csv
import json
from pathlib import Path

import asyncpg
import pytest

from mgrecs.batch.export import SCHEMAS, export_datasets
from mgrecs.batch.shards import ModelCache
from mgrecs.batch.training import retrain
from mgrecs.common.artifacts import MODEL_CACHE, S3Store, open_store
from mgrecs.common.settings import Settings
from mgrecs.engine_service.registry import ModelRegistry
from support.s3 import s3_bucket
from support.shop import ORDERS

LINES = sum(len(products) for *_, products in ORDERS)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _check(files: dict[str, list[dict[str, str]]]) -> None:
    """Exactly the schemas' columns, one row per order line / product / customer."""
    for name, rows in files.items():
        assert list(rows[0]) == [field["name"] for field in SCHEMAS[name]["fields"]]
    interactions = files["interactions"]
    assert len(interactions) == LINES
    assert {row["EVENT_TYPE"] for row in interactions} == {"purchase"}
    stamps = [int(row["TIMESTAMP"]) for row in interactions]
    assert stamps == sorted(stamps) and stamps[0] > 1_700_000_000
    assert {(row["USER_ID"], row["ITEM_ID"]) for row in interactions} == {
        (customer, product) for _, customer, _, _, products in ORDERS for product in products
    }
    # The quantity bought is the EVENT_VALUE (the shop's line n has quantity 1 + n).
    assert sorted(float(row["EVENT_VALUE"]) for row in interactions) == sorted(
        float(1 + n) for *_, products in ORDERS for n, _ in enumerate(products)
    )
    assert [row["ITEM_ID"] for row in files["items"]] == [f"p{i}" for i in range(1, 8)]
    assert [row["PRODUCT_NAME"] for row in files["items"]] == [f"product p{i}" for i in range(1, 8)]
    users = {row["USER_ID"]: row for row in files["users"]}
    assert users["c4"]["LOCATION"] == "south" and users["c7"]["AGE"] == ""


def test_the_schemas_are_the_old_pipelines() -> None:
    """Field for field, in order, what the old pipeline's dataset group holds (issue 21):
    an adopted group imports the export as it is."""
    assert {name: [f["name"] for f in schema["fields"]] for name, schema in SCHEMAS.items()} == {
        "interactions": ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"],
        "items": ["ITEM_ID", "PRODUCT_NAME", "CATEGORY", "PRICE"],
        "users": ["USER_ID", "AGE", "GENDER", "LOCATION"],
    }


async def test_a_retrain_exports_the_datasets_to_the_directory_store(
    purchases: None,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    settings = settings.model_copy(update={"artifact_store_url": store_dir.as_uri()})
    version = await retrain(pool, settings)

    datasets = version.metrics["datasets"]
    assert {name: datasets[name]["rows"] for name in SCHEMAS} == {
        "interactions": LINES,
        "items": 7,
        "users": 7,
    }
    folder = store_dir / "datasets" / version.version
    assert datasets["interactions"]["uri"] == (folder / "interactions.csv").as_uri()
    files = {name: await asyncio.to_thread(_read, folder / f"{name}.csv") for name in SCHEMAS}
    _check(files)
    assert json.loads((folder / "schemas.json").read_text()) == SCHEMAS


async def test_the_datasets_go_to_s3_through_aioboto3(
    purchases: None,
    pool: asyncpg.Pool,
    settings: Settings,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    settings = settings.model_copy(
        update={"artifact_store_url": "s3://mgrecs-artifacts/prod", "s3_endpoint_url": s3_endpoint}
    )
    session = await s3_bucket(settings, s3_endpoint, "mgrecs-artifacts")
    store = open_store(settings)
    assert isinstance(store, S3Store)

    exported = await export_datasets(pool, store, "run-1")

    assert (
        exported["interactions"].uri == "s3://mgrecs-artifacts/prod/datasets/run-1/interactions.csv"
    )
    async with session.client("s3", endpoint_url=s3_endpoint) as s3:
        listing = await s3.list_objects_v2(Bucket="mgrecs-artifacts", Prefix="prod/datasets/run-1/")
    keys = sorted(item["Key"].rsplit("/", 1)[1] for item in listing["Contents"])
    assert keys == ["interactions.csv", "items.csv", "schemas.json", "users.csv"]
    files = {}
    for name in SCHEMAS:
        local = tmp_path / f"{name}.csv"
        await store.get(f"datasets/run-1/{name}.csv", local)
        files[name] = await asyncio.to_thread(_read, local)
    _check(files)


def test_unknown_store_schemes_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="only file:// and s3://"):
        open_store(settings.model_copy(update={"artifact_store_url": "gs://bucket"}))
    with pytest.raises(ValueError, match="names no bucket"):
        open_store(settings.model_copy(update={"artifact_store_url": "s3:///prefix"}))


async def test_models_go_to_s3_and_engines_and_workers_load_them_from_there(
    purchases: None,
    pool: asyncpg.Pool,
    settings: Settings,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    """With an s3:// artifact store the model version names the store's copy, and a process
    on another machine (another artifact_dir, the trainer's file gone) loads it from there:
    the engine's registry and a batch worker's model cache alike."""
    settings = settings.model_copy(
        update={"artifact_store_url": "s3://mgrecs-models/prod", "s3_endpoint_url": s3_endpoint}
    )
    await s3_bucket(settings, s3_endpoint, "mgrecs-models")

    version = await retrain(pool, settings)

    assert version.artifact_uri.startswith("s3://mgrecs-models/prod/models/")
    await asyncio.to_thread(_remove_models, Path(settings.artifact_dir))
    elsewhere = settings.model_copy(update={"artifact_dir": str(tmp_path / "elsewhere")})
    registry = ModelRegistry(elsewhere)
    assert await registry.refresh(pool)
    assert registry.version == version.version
    worker_model = await ModelCache(elsewhere).load(version.artifact_uri)
    assert worker_model.item_ids == registry.current.model.item_ids  # type: ignore[union-attr]
    copies = await asyncio.to_thread(list, (tmp_path / "elsewhere" / MODEL_CACHE).rglob("*.npz"))
    assert len(copies) == 1  # downloaded once, both read the copy


def _remove_models(directory: Path) -> None:
    """The trainer's local model files: the engine's machine does not have them."""
    for trained in directory.glob("*.npz"):
        trained.unlink()
