"""The requests and answers of `routes.admin`: cache invalidation and schedule ticks."""

from pydantic import BaseModel, Field, model_validator

from mgrecs.api.schemas.shared import CacheId, with_examples
from mgrecs.common.schemas import TickKind


class InvalidateRequest(BaseModel):
    """Exactly one of: the whole cache, one region's customers, one customer."""

    model_config = with_examples({"all": True}, {"region": "north"}, forbid_extra=True)

    all: bool = False
    region: CacheId | None = None
    customer: CacheId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "InvalidateRequest":
        if [self.all, self.region is not None, self.customer is not None].count(True) != 1:
            raise ValueError("give exactly one of all (true), region, customer")
        return self


class Invalidation(BaseModel):
    """What was invalidated; `generation` null when no generation was current."""

    generation: int | None
    users: int = Field(description="customer rows removed from the cache")
    products: int = Field(description="product rows no longer served (all only)")


class TickSent(BaseModel):
    kind: TickKind
    tick_id: str
