"""What the api answered: the message on topic `served`.

One message per answer (a customer's list, a visitor's, a region page, similar items…), with
the products in slot order and everything that explains them: source, model version,
experiment arm, rules applied. Attribution of real orders (`GET /v1/reports/impact`) and the
online accuracy of the active model are measured against these (docs/concepts.md, Impact).
"""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mgrecs.common.schemas import ID_PATTERN, Id, Message, Region, SaneTimestamp

ServedEndpoint = Literal["user", "buy_again", "visitor", "region", "similar", "ranking"]
"""Which api answer it was: a customer's list, their buy-again list, a visitor's list, a
region page, a product's similar items, or a ranking the caller asked for."""
ServedSource = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=ID_PATTERN)]
"""As the answer's `source` said (cache, realtime, popular, aggregates, catalogue…)."""

MAX_SERVED_PRODUCTS = 500
"""The most products one answer can hold (the api's largest `limit`)."""


class ServedList(Message):
    """One answer of the api (schema version 1). `served_id` makes writes idempotent: the
    api draws it once per answer, a redelivered message is written once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "served_id": "0f6c1a6e9a8e4d1c8e8f2b7f4c2d9a10",
                    "served_at": "2026-12-07T10:15:00Z",
                    "endpoint": "user",
                    "customer_id": "C00001",
                    "region": "north",
                    "product_ids": ["P0007", "P0015", "P0039"],
                    "source": "cache",
                    "model_version": "v20261207-0300",
                    "experiment_id": "ease-vs-als",
                    "arm": "treatment",
                    "rule_ids": [3, 12],
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    served_id: Id
    served_at: SaneTimestamp
    endpoint: ServedEndpoint
    customer_id: Id | None = Field(
        default=None, description="the customer answered; none for visitors and region pages"
    )
    region: Region | None = None
    product_id: Id | None = Field(
        default=None, description="the product whose similar items were asked (`similar`)"
    )
    product_ids: list[Id] = Field(
        max_length=MAX_SERVED_PRODUCTS, description="the products answered, slot 1 first"
    )
    source: ServedSource
    model_version: Id | None = None
    experiment_id: Id | None = None
    arm: Id | None = None
    rule_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list,
        max_length=1000,
        description="the business rules applied (their ids: PostgreSQL bigints)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ServedList":
        if (self.experiment_id is None) != (self.arm is None):
            raise ValueError("experiment_id and arm: give both or neither")
        if self.endpoint in ("user", "buy_again") and self.customer_id is None:
            raise ValueError(f"customer_id: a {self.endpoint} answer names its customer")
        return self
