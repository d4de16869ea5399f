"""Path and query parameters shared by the routes (validated before any query runs)."""

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from mgrecs.common.schemas import ID_PATTERN

MAX_CATEGORIES = 10
MAX_CATEGORIES_CHARS = 900
"""Together, quoted: Personalize takes at most 1,000 characters per filter value."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

UserId = Annotated[str, Path(min_length=1, max_length=255, pattern=ID_PATTERN, examples=["C00001"])]
ProductId = Annotated[
    str, Path(min_length=1, max_length=255, pattern=ID_PATTERN, examples=["P0001"])
]
Region = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, examples=["north"])]
Limit = Annotated[int, Query(ge=1, le=100, description="how many items (1-100)")]


def _categories(values: list[str] | None) -> list[str] | None:
    """`?category=a&category=b` and `?category=a,b` alike: distinct names, in order."""
    if not values:
        return None
    names: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name or len(name) > 255 or CONTROL.search(name):
                raise ValueError(
                    f"{part!r} is not a category (1-255 characters, no control characters)"
                )
            names[name] = None
    if len(names) > MAX_CATEGORIES:
        raise ValueError(f"at most {MAX_CATEGORIES} categories")
    if sum(len(name) + 3 for name in names) > MAX_CATEGORIES_CHARS:
        raise ValueError(f"the categories are longer than {MAX_CATEGORIES_CHARS} characters")
    return list(names)


Categories = Annotated[
    list[str] | None,
    Query(
        description="only products of these categories: repeat the parameter or separate "
        "with commas (at most 10)",
        examples=["dairy,bakery"],
    ),
    AfterValidator(_categories),
]


MAX_PRODUCT_IDS = 100
ID = re.compile(ID_PATTERN)


def _product_ids(values: list[str]) -> list[str]:
    """Distinct ids, in order, each a valid id, at most MAX_PRODUCT_IDS."""
    ids = list(dict.fromkeys(values))
    for value in ids:
        if not 1 <= len(value) <= 255 or not ID.match(value):
            raise ValueError(f"{value!r} is not a product id")
    if len(ids) > MAX_PRODUCT_IDS:
        raise ValueError(f"at most {MAX_PRODUCT_IDS} product ids")
    return ids


ProductIds = Annotated[
    list[str],
    Query(
        alias="id",
        description=f"a product id: repeat the parameter (at most {MAX_PRODUCT_IDS})",
        examples=["P0015"],
    ),
    AfterValidator(_product_ids),
]
