"""Messages on the Kafka topics. These pydantic models are the published contract.

Every message is JSON, carries `schema_version`, and is keyed by customer id on `orders`.
Messages refuse what is absurd (a time before 2000 or more than a day ahead, NaN or
infinite numbers, ids with invisible characters) with a validation error, never another
exception: a consumer dead-letters them like any other invalid message.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from mgrecs.common.ticks import TickKind as TickKind  # re-exported: the tick's contract

UNSEEN = (
    r"\x00-\x1f\x7f-\x9f"  # C0 and C1 control characters, DEL
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks and overrides
    r"\u200b-\u200d\u2060\ufeff"  # zero-width spaces and joiners, the byte-order mark
)
"""Characters an id must not contain: they are invisible, or reorder what is shown, so two
ids that look the same would differ (regex escapes that Python and pydantic's Rust engine
both read)."""
ID_PATTERN = rf"^[^\s{UNSEEN}]([^{UNSEEN}]*[^\s{UNSEEN}])?$"
"""An id: printable, no control, bidi or zero-width characters, no leading or trailing
blanks."""
TEXT_PATTERN = r"^[^\x00]*$"
"""Free text: anything PostgreSQL can store (it refuses NUL characters)."""

Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=ID_PATTERN),
]
"""An id, trimmed first: upstream systems pad ids (" C001 " means "C001"). What is left must
match `ID_PATTERN`, so control characters (other than surrounding whitespace) are refused."""
Region = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64, pattern=ID_PATTERN)]
OrderStatus = Literal["placed", "cancelled", "returned"]
"""Where an order (or one of its lines) stands upstream; only `placed` ones count as purchases."""
PLACED: OrderStatus = "placed"

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No message of this system happened before this instant."""
MAX_AHEAD = timedelta(days=1)
"""How far ahead of this machine's clock a time may be (clock skew, not the year 9999)."""


def _sane(moment: datetime) -> datetime:
    """`moment` in UTC, if it is between EARLIEST and a day from now; otherwise a
    ValueError (never the OverflowError of a time UTC cannot represent)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range once in UTC (year 9999 or year 1?)") from exc
    if utc < EARLIEST:
        raise ValueError(f"before {EARLIEST:%Y-%m-%d}: not a time this system can have seen")
    if utc > datetime.now(UTC) + MAX_AHEAD:
        raise ValueError("more than a day in the future: check the sender's clock and year")
    return utc


SaneTimestamp = Annotated[AwareDatetime, AfterValidator(_sane)]
"""A time of a message: with a time zone, stored in UTC (equal instants compare equal), from
2000-01-01 up to a day ahead of now. Every timestamp on a topic is one."""


class Message(BaseModel):
    """Base of every message: unknown fields and NaN/Infinity numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OrderLine(Message):
    """One product line of an order."""

    product_id: Id
    quantity: int = Field(gt=0, le=10_000)
    price: Decimal = Field(ge=0, le=1_000_000, decimal_places=2)
    product_name: str | None = Field(default=None, max_length=500, pattern=TEXT_PATTERN)
    category: str | None = Field(default=None, max_length=255, pattern=TEXT_PATTERN)
    status: OrderStatus = PLACED
    """A line cancelled or returned on its own (the rest of the order stands)."""


class Customer(Message):
    """What an order says about who placed it (all optional but the id)."""

    customer_id: Id
    age: int | None = Field(default=None, ge=0, le=130)
    gender: Literal["F", "M", "X"] | None = None
    city: str | None = Field(default=None, max_length=255, pattern=TEXT_PATTERN)
    region: Region | None = None
    email: str | None = Field(default=None, max_length=320, pattern=TEXT_PATTERN)
    """Only to merge customers (docs/concepts.md, Customer identities); ingest drops it once
    used."""
    phone: str | None = Field(default=None, max_length=64, pattern=TEXT_PATTERN)
    """Only to merge customers, like `email`; any format, read with the default region."""
    source_customer_id: Id | None = None
    """The id upstream sent, when ingest replaced `customer_id` with the unified one."""


CONTENT_HASH_CHARS = 32
"""Hex digits of the content hash kept (128 bits): it only breaks ties of `updated_at`."""


@dataclass(frozen=True, order=True)
class OrderVersion:
    """Which of two messages about one order is the newer: the later `updated_at`, and on a
    tie the greater content hash, so that any two different messages compare the same way
    wherever they are compared (tracker, engine) and in whatever order they arrive."""

    updated_at: datetime
    content_hash: str

    @property
    def token(self) -> str:
        """The version as text that sorts like the version (fixed-width UTC time, then hash):
        how it travels in PutEvents properties."""
        return version_token(self.updated_at, self.content_hash)


def version_token(updated_at: datetime, content_hash: str) -> str:
    """`OrderVersion.token` from its parts (the engine builds it from database rows too):
    `YYYY-MM-DDTHH:MM:SS.ffffff/<hash>`, the time in UTC. (Built from `isoformat()`, which
    leaves out zero microseconds: a third of the cost of `isoformat(timespec=...)` on every
    event the tracker sends.)"""
    if updated_at.tzinfo is not UTC:
        updated_at = updated_at.astimezone(UTC)
    moment = updated_at.isoformat()[:-6]  # without its "+00:00"
    if updated_at.microsecond:
        return f"{moment}/{content_hash}"
    return f"{moment}.000000/{content_hash}"


class OrderEvent(Message):
    """An order placed by a customer, as it stands now: the message on topic `orders`
    (schema version 1).

    Upstream may send an order again, corrected, cancelled or returned: each message is the
    whole order as the company now keeps it, and the newest (`version`) replaces the others.
    `status` and `updated_at` are optional; without `updated_at` the version's time is
    `ordered_at`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_version": 1,
                    "order_id": "o-1001",
                    "ordered_at": "2026-11-20T10:15:00Z",
                    "customer": {"customer_id": "c-42", "region": "north", "city": "Oslo"},
                    "lines": [{"product_id": "p-7", "quantity": 2, "price": "9.90"}],
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    order_id: Id
    ordered_at: SaneTimestamp
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    status: OrderStatus = PLACED
    """`cancelled` or `returned`: none of the order's lines counts any more."""
    updated_at: SaneTimestamp | None = None
    """When upstream last changed the order: the newest version of an order wins."""

    @property
    def version(self) -> OrderVersion:
        """This message's place among the versions of its order (see `OrderVersion`)."""
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:CONTENT_HASH_CHARS]
        return OrderVersion(self.updated_at or self.ordered_at, digest)

    def live_lines(self) -> list[tuple[int, OrderLine]]:
        """The lines that count as purchases, with their line numbers (1-based, positions in
        `lines`): none when the order is cancelled or returned."""
        if self.status != PLACED:
            return []
        return [(n, line) for n, line in enumerate(self.lines, start=1) if line.status == PLACED]

    @property
    def key(self) -> bytes:
        """The Kafka key: orders of one customer stay in order on one partition."""
        return self.customer.customer_id.encode()


MAX_TICK_ID_LENGTH = 64
"""The width of `processed_ticks.tick_id`: a longer id makes the tick invalid."""


class ScheduleTick(Message):
    """A request to the batch service, on topic `schedule-ticks`."""

    schema_version: Literal[1] = 1
    tick_id: Annotated[Id, StringConstraints(max_length=MAX_TICK_ID_LENGTH)] = Field(
        default_factory=lambda: uuid4().hex
    )
    kind: TickKind
    requested_at: SaneTimestamp = Field(default_factory=lambda: datetime.now(UTC))


class InferShard(Message):
    """One shard of an infer run's cache generation, on topic `infer-shards`: the customers
    and products whose stable hash modulo `shards` is `shard`."""

    schema_version: Literal[1] = 1
    generation: int = Field(ge=1, le=2**63 - 1)
    """A `cache_generations` id (BIGSERIAL)."""
    shard: int = Field(ge=0)
    shards: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _within(self) -> "InferShard":
        if self.shard >= self.shards:
            raise ValueError(f"shard: {self.shard} is not below shards ({self.shards})")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key, `generation:shard` (spreads one run's shards over partitions)."""
        return f"{self.generation}:{self.shard}".encode()


class DeadLetter(BaseModel):
    """A message no consumer could handle, with the reason, on `<topic>.dlq`."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    payload: str
    """The message as it came: its text, or (see `payload_encoding`) its bytes in base64."""
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    """`base64` when the message was not UTF-8 text: the letter keeps its exact bytes."""
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
