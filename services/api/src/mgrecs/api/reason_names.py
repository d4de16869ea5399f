"""Reasons people read: the product ids a reason names (`bought P0015, P0039`, `bought
together with P0042`, `new, bought together with P0042`, `same brand as P0042`) replaced by
the products' names (`bought Family Cushion 95, Oak Lamp`), the ids kept apart.

The engine and the nightly cache write reasons with ids (stable, and what batch inference
can afford for 25 million of them); the API names them as it answers (docs/api.md, Scores
and reasons). Only the parts of a known reason's form that are products are named: `bought
twice, last 3 weeks ago` or `popular in north` stay as they are. A product without a name
keeps its id in the text.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

_ONE_PRODUCT = (
    re.compile(r"^(?P<lead>(?:new, )?bought together with )(?P<id>.+)$", re.DOTALL),
    re.compile(r"^(?P<lead>same .+? as )(?P<id>.+)$", re.DOTALL),
)
_BOUGHT = "bought "
_AFTER = ", "


@dataclass(frozen=True)
class NamedReason:
    """A reason as served: its text with names, and the products it names (in order)."""

    text: str
    product_ids: list[str]


def reason_candidates(reason: str) -> list[str]:
    """The parts of `reason` that may be product ids (whether they are is the catalogue's
    to say)."""
    for form in _ONE_PRODUCT:
        if found := form.match(reason):
            return [found["id"]]
    if reason.startswith(_BOUGHT):
        return reason[len(_BOUGHT) :].split(_AFTER)
    return []


def named_reason(reason: str, names: Mapping[str, str | None]) -> NamedReason:
    """`reason` with each product id of it that is in `names` (a product: its name, or
    None when it has none) replaced by the name; those ids, in order of appearance."""

    def name(product_id: str) -> str:
        return names.get(product_id) or product_id

    for form in _ONE_PRODUCT:
        if (found := form.match(reason)) and found["id"] in names:
            return NamedReason(found["lead"] + name(found["id"]), [found["id"]])
    if reason.startswith(_BOUGHT):
        parts = reason[len(_BOUGHT) :].split(_AFTER)
        ids = [p for p in parts if p in names]
        if ids:
            return NamedReason(_BOUGHT + _AFTER.join(map(name, parts)), ids)
    return NamedReason(reason, [])
