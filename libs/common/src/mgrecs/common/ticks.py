"""The kinds of batch tick, apart from the messages that carry them (`schemas`), so that
`mgrecs tick --help` can name them without importing pydantic."""

from typing import Literal

TickKind = Literal["retrain", "refresh", "infer", "online"]
