"""Reasons people read: the product ids a reason names (`bought P0015, P0039`, `bought
together with P0042`, `new, bought together with P0042`, `same brand as P0042`) replaced by
the products' names (`bought Family Cushion 95, Oak Lamp`), the ids kept apart.

The engine and the nightly cache write reasons with ids (stable, and what batch inference
can afford for 25 million of them); the API names them as it answers (docs/api.md, Scores
and reasons). Only the parts of a known reason's form that are products are named: `bought
twice, last 3 weeks ago` or `popular in north` stay as they are. A product without a name
keeps its id in the text.

Every answer's reasons pass through here, so the forms are told apart by prefixes and one
`find`, not regular expressions (a third of the naming's CPU went to matching them).
"""

from collections.abc import Mapping
from typing import NamedTuple

_TOGETHER = ("bought together with ", "new, bought together with ")
"""Leads of a reason naming one product, the rest of it (`bought together with P0042`)."""
_SAME = "same "
_AS = " as "
"""`same <attributes> as <product>`: the product follows the first ` as ` after at least one
character of attributes."""
_BOUGHT = "bought "
_AFTER = ", "


class NamedReason(NamedTuple):
    """A reason as served: its text with names, and the products it names (in order)."""

    text: str
    product_ids: list[str]


def _one_product(reason: str) -> int:
    """Where the product id of a one-product form (`bought together with`, `same ... as`)
    starts in `reason`; 0 when it is of none (the id is never empty)."""
    if reason.startswith(_BOUGHT) and not reason.startswith(_TOGETHER[0]):
        return 0  # the most common by far: `bought P0015, P0039`
    for lead in _TOGETHER:
        if reason.startswith(lead):
            return len(lead) if len(reason) > len(lead) else 0
    if reason.startswith(_SAME):
        at = reason.find(_AS, len(_SAME) + 1)
        if at >= 0 and len(reason) > at + len(_AS):
            return at + len(_AS)
    return 0


class Cited(NamedTuple):
    """The parts of a reason that may be product ids (whether they are is the catalogue's to
    say): `start`, where a one-product form's id starts (0: of no such form), and the
    candidates. Told apart once: naming takes them as they are (`named_cited`)."""

    start: int
    candidates: list[str]


def cited(reason: str) -> Cited:
    """What `reason` may cite (no candidates: of no form that names a product)."""
    if start := _one_product(reason):
        return Cited(start, [reason[start:]])
    if reason.startswith(_BOUGHT):
        return Cited(0, reason[len(_BOUGHT) :].split(_AFTER))
    return Cited(0, [])


def named_reason(reason: str, names: Mapping[str, str | None]) -> NamedReason:
    """`reason` with each product id of it that is in `names` (a product: its name, or
    None when it has none) replaced by the name; those ids, in order of appearance."""
    return named_cited(reason, cited(reason), names)


def named_cited(reason: str, found: Cited, names: Mapping[str, str | None]) -> NamedReason:
    """`named_reason` of a reason whose candidates were found already (`cited(reason)`)."""
    start, parts = found
    if start:
        if (product_id := parts[0]) in names:
            return NamedReason(reason[:start] + (names[product_id] or product_id), [product_id])
        if not reason.startswith(_BOUGHT):
            return NamedReason(reason, [])
        parts = reason[len(_BOUGHT) :].split(_AFTER)  # `bought together with` a non-product
    ids = [p for p in parts if p in names]
    if ids:
        return NamedReason(_BOUGHT + _AFTER.join([names.get(p) or p for p in parts]), ids)
    return NamedReason(reason, [])
