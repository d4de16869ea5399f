"""What several answers share: a recommended item, the cache's freshness, where a list
came from, an error message and the id of a cached row."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mgrecs.common.schemas import ID_PATTERN

Source = Literal["cache", "realtime", "popular", "none"]


def with_examples(*examples: dict[str, Any], forbid_extra: bool = False) -> ConfigDict:
    """A model config whose OpenAPI schema shows `examples`; `forbid_extra`: a request
    body with an unknown field is refused."""
    if forbid_extra:
        return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class RecommendedItem(BaseModel):
    """One recommended product; scores are 0.0-1.0, higher is better."""

    product_id: str
    score: float
    reason: str | None = Field(
        default=None,
        description="why, in words, products by name: `bought Family Cushion 95, Oak Lamp`",
    )
    reason_product_ids: list[str] = Field(
        default_factory=list,
        description="the products `reason` names, by id, in its order (the text shows "
        "their names; docs/api.md, Scores and reasons)",
    )


class CacheFreshness(BaseModel):
    """How old the cache behind an answer is: a generation past `cache_ttl_hours` (the infer
    is late or failed) still serves, marked stale, when nothing fresher answers."""

    stale: bool = Field(
        default=False,
        description="true: from a cache generation older than cache_ttl_hours (the infer is "
        "late); served because nothing fresher answered",
    )
    cache_age_seconds: float | None = Field(
        default=None,
        description="age of the cache generation the answer came from (null: not from the cache)",
    )


CacheId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ID_PATTERN)]


class ErrorMessage(BaseModel):
    """Every error answer: a human-readable message in `detail`."""

    model_config = with_examples({"detail": "unknown user C404"})

    detail: str
