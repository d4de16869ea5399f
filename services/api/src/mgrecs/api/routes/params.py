"""Path and query parameters shared by the routes (validated before any query runs)."""

from typing import Annotated

from fastapi import Path, Query

from mgrecs.common.schemas import ID_PATTERN

UserId = Annotated[str, Path(min_length=1, max_length=255, pattern=ID_PATTERN, examples=["C00001"])]
ProductId = Annotated[
    str, Path(min_length=1, max_length=255, pattern=ID_PATTERN, examples=["P0001"])
]
Region = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, examples=["north"])]
Limit = Annotated[int, Query(ge=1, le=100, description="how many items (1-100)")]
