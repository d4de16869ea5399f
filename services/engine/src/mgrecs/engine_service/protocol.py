"""Request bodies of the Personalize operations the engine serves, as botocore sends them.

Field names and limits follow botocore's service models (personalize-events 2018-03-22,
personalize-runtime 2018-05-22); unknown members are ignored like AWS ignores them.
"""

from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from mgrecs.common.personalize import MAX_BULK_EVENTS
from mgrecs.common.schemas import SaneTimestamp
from mgrecs.engine_service.errors import invalid_input
from mgrecs.engine_service.events import Line

MAX_ID = 256
MAX_CALL_EVENTS = 10
"""PutEvents' limit on `eventList`."""
MAX_PROPERTIES = 1024
"""PutEvents' limit on an event's `properties` (characters)."""
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$"
MAX_RESULTS = 500


class _AwsShape(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", allow_inf_nan=False
    )


class Tags(NamedTuple):
    """Members of an event's `properties` the engine reads (named as the tracker sends them)."""

    region: str | None
    orderId: str | None  # noqa: N815 - the member's name in `properties`
    orderVersion: str | None  # noqa: N815


NO_TAGS = Tags(None, None, None)


def _text(value: Any) -> str | None:
    """A non-empty text member, else None."""
    return value if isinstance(value, str) and value else None


class Event(_AwsShape):
    event_id: Id | None = None
    event_type: Id
    event_value: float | None = None
    item_id: Id | None = None
    properties: str | None = Field(default=None, max_length=MAX_PROPERTIES)
    sent_at: SaneTimestamp
    """From 2000 to a day ahead: a time in year 9999 would skew every recency weight."""

    @field_validator("properties")
    @classmethod
    def _json_object(cls, value: str | None) -> str | None:
        if value is not None and not isinstance(orjson.loads(value), dict):
            raise ValueError("properties must be a JSON object")
        return value

    def tags(self) -> Tags:
        """What the tracker put in `properties` (one parse for all of it): the customer's
        region, and the order version this event is a line of (mgrecs.engine_service.events)."""
        if self.properties is None:
            return NO_TAGS
        members = orjson.loads(self.properties)
        return Tags(
            _text(members.get("region")),
            _text(members.get("orderId")),
            _text(members.get("orderVersion")),
        )


def lines_of(user_id: str, events: Sequence[Event]) -> list[Line]:
    """What the history keeps of `user_id`'s events."""
    lines = []
    for event in events:
        tags = event.tags()  # `properties` parsed once per event
        lines.append(
            Line(
                user_id, event.event_id, event.item_id, tags.region, tags.orderId, tags.orderVersion
            )
        )
    return lines


class PutEventsRequest(_AwsShape):
    tracking_id: Id
    user_id: Id | None = None
    session_id: Id
    event_list: list[Event] = Field(min_length=1, max_length=MAX_CALL_EVENTS)


class BulkPutEventsRequest(_AwsShape):
    """The tracker's bulk (mgrecs.common.personalize.BULK_EVENTS_PATH): PutEvents calls,
    each with PutEvents' own limits, and at most MAX_BULK_EVENTS events in all."""

    calls: list[PutEventsRequest] = Field(min_length=1)

    @field_validator("calls")
    @classmethod
    def _bounded(cls, calls: list[PutEventsRequest]) -> list[PutEventsRequest]:
        events = sum(len(call.event_list) for call in calls)
        if events > MAX_BULK_EVENTS:
            raise ValueError(f"{events} events, more than {MAX_BULK_EVENTS} in one bulk")
        return calls


FilterValues = Annotated[dict[str, Annotated[str, Field(max_length=1000)]], Field(max_length=25)]


class Promotion(_AwsShape):
    """Products matching `filter_arn` get `percent_promoted_items` % of the slots."""

    name: str | None = Field(default=None, min_length=1, max_length=63, pattern=NAME_PATTERN)
    percent_promoted_items: int = Field(ge=1, le=100)
    filter_arn: str
    filter_values: FilterValues | None = None


class GetRecommendationsRequest(_AwsShape):
    campaign_arn: str | None = None
    recommender_arn: str | None = None
    item_id: Id | None = None
    user_id: Id | None = None
    num_results: int = Field(default=25, ge=1, le=MAX_RESULTS)
    context: dict[str, str] | None = None
    filter_arn: str | None = None
    filter_values: FilterValues | None = None
    promotions: list[Promotion] | None = Field(default=None, max_length=1)


class GetPersonalizedRankingRequest(_AwsShape):
    campaign_arn: str
    input_list: list[Id] = Field(min_length=1, max_length=MAX_RESULTS)
    user_id: Id
    context: dict[str, str] | None = None
    filter_arn: str | None = None
    filter_values: FilterValues | None = None


Request = TypeVar("Request", bound=BaseModel)


MAX_PROBLEMS = 10
"""Problems named in one error message at most: a bulk of 5,000 bad events gets a readable
answer (and dead letter), not a 200 KB one."""


def parse(model: type[Request], body: bytes) -> Request:
    """Validate a JSON body; anything wrong, whatever the exception, is AWS's
    InvalidInputException (400), never a 500."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in errors[:MAX_PROBLEMS]
        )
        if len(errors) > MAX_PROBLEMS:
            problems += f"; and {len(errors) - MAX_PROBLEMS} more"
        raise invalid_input(problems) from exc
    except Exception as exc:  # noqa: BLE001 - a body that cannot be read is the caller's
        raise invalid_input(f"body: {type(exc).__name__}: {exc}") from exc


def predicted_item(
    item_id: str, score: float, reason: str, promotion_name: str | None = None
) -> dict[str, Any]:
    """One `PredictedItem` of the response (`promotionName` on a promoted item)."""
    item: dict[str, Any] = {"itemId": item_id, "score": score, "reason": [reason]}
    if promotion_name is not None:
        item["promotionName"] = promotion_name
    return item
