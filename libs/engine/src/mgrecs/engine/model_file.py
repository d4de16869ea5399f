"""The model file: one .npz of numpy arrays plus a JSON header (ids, recipe, catalogue
names), written atomically and read without pickle. Any other format version is refused."""

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.catalog import Catalog
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.popularity import Popularity
from mgrecs.engine.recipes import RECIPES, Recipe
from mgrecs.engine.recipes.support import csr_from_state, csr_state

FORMAT_VERSION = 4
"""4: the trend strengths (global and per region) too; 3 added the product catalogue; 2 the
recipe (name, parameters, state). Older files are not readable any more: the batch service
retrains. The order history (`OrderHistory`) is optional within format 4: a file without it
is a model whose recipe does not use it."""
RECIPE_PREFIX = "recipe."
"""Arrays of the recipe's state are stored under this prefix."""
HISTORY_ORDERS = "history.orders"
HISTORY_LAST_BOUGHT = "history.last_bought"
HISTORY_NOW = "history.now"
"""Names of the order history's two CSR matrices (`csr_state`) and its reference time,
stored only when the model keeps them, so a discovery model's file does not grow."""


def write_model(path: Path, parts: dict[str, Any]) -> None:
    """Write the model's constructor arguments `parts`; atomic rename at the end."""
    matrix: sparse.csr_matrix = parts["matrix"]
    similarity: sparse.csr_matrix = parts["similarity"]
    recipe: Recipe = parts["recipe"]
    catalog: Catalog = parts["catalog"]
    popularity: Popularity = parts["popularity"]
    history: OrderHistory | None = parts["order_history"]
    meta = {
        "format": FORMAT_VERSION,
        "customer_ids": parts["customer_ids"],
        "item_ids": parts["item_ids"],
        "regions": parts["regions"],
        "recipe": {"name": recipe.name, "params": recipe.params()},
        "score_scale": parts["score_scale"],
        "catalog": {
            "extra_ids": catalog.product_ids[len(parts["item_ids"]) :],
            "names": catalog.names,
            "categories": catalog.categories,
        },
    }
    arrays: dict[str, npt.NDArray[Any]] = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "matrix_data": matrix.data,
        "matrix_indices": matrix.indices,
        "matrix_indptr": matrix.indptr,
        "similarity_data": similarity.data,
        "similarity_indices": similarity.indices,
        "similarity_indptr": similarity.indptr,
        "customer_region": parts["customer_region"],
        "popularity_global": popularity.global_counts,
        "popularity_regional": popularity.regional_counts,
        "trend_global": popularity.global_trend,
        "trend_regional": popularity.regional_trend,
        "catalog_category": catalog.category,
        "catalog_price": catalog.price,
        "catalog_active": catalog.active,
    }
    arrays.update((RECIPE_PREFIX + key, value) for key, value in recipe.state().items())
    if history is not None:
        arrays.update(csr_state(history.orders, HISTORY_ORDERS))
        arrays.update(csr_state(history.last_bought, HISTORY_LAST_BOUGHT))
        arrays[HISTORY_NOW] = np.array([history.now], dtype=np.float64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader polling for new models must never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(buffer.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_model(path: Path) -> dict[str, Any]:
    """The constructor arguments of the model `write_model` wrote to `path`."""
    with np.load(Path(path), allow_pickle=False) as arrays:
        meta = json.loads(arrays["meta"].tobytes())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported model format {meta.get('format')!r} in {path} "
                f"(this version reads format {FORMAT_VERSION}): retrain the model"
            )
        stored = meta["recipe"]
        recipe = RECIPES[stored["name"]].from_state(
            stored["params"],
            {
                key.removeprefix(RECIPE_PREFIX): arrays[key]
                for key in arrays.files
                if key.startswith(RECIPE_PREFIX)
            },
        )
        n_users, n_items = len(meta["customer_ids"]), len(meta["item_ids"])
        matrix = sparse.csr_matrix(
            (arrays["matrix_data"], arrays["matrix_indices"], arrays["matrix_indptr"]),
            shape=(n_users, n_items),
        )
        similarity = sparse.csr_matrix(
            (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]),
            shape=(n_items, n_items),
        )
        history = None
        if HISTORY_NOW in arrays.files:
            history = OrderHistory(
                orders=csr_from_state(arrays, HISTORY_ORDERS),
                last_bought=csr_from_state(arrays, HISTORY_LAST_BOUGHT),
                now=float(arrays[HISTORY_NOW][0]),
            )
        return {
            "customer_ids": list(meta["customer_ids"]),
            "item_ids": list(meta["item_ids"]),
            "regions": list(meta["regions"]),
            "matrix": matrix,
            "customer_region": arrays["customer_region"],
            "popularity": Popularity(
                global_counts=arrays["popularity_global"],
                regional_counts=arrays["popularity_regional"],
                global_trend=arrays["trend_global"],
                regional_trend=arrays["trend_regional"],
            ),
            "similarity": similarity,
            "recipe": recipe,
            "score_scale": float(meta["score_scale"]),
            "catalog": Catalog(
                product_ids=list(meta["item_ids"]) + list(meta["catalog"]["extra_ids"]),
                names=list(meta["catalog"]["names"]),
                categories=list(meta["catalog"]["categories"]),
                category=arrays["catalog_category"],
                price=arrays["catalog_price"],
                active=arrays["catalog_active"],
            ),
            "order_history": history,
        }
