"""The engine's filters, and what a request's filterArn, filterValues and promotions ask.

Filters are configured rather than created through the control plane: MGRECS_ENGINE_FILTERS
maps a name to a Personalize filter expression (see `mgrecs.engine.filters`), served under
the ARN MGRECS_FILTER_ARN_PREFIX + name. An expression the engine cannot use is logged at
start and answered with InvalidInputException when a request names it, so one bad filter
never stops the engine answering every other request.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.engine.filters import BoundFilter, Filter, bind, parse_filter
from mgrecs.engine_service import protocol
from mgrecs.engine_service.errors import invalid_input, not_found

log = get_logger(__name__)


@dataclass(frozen=True)
class Promotion:
    """Products passing `filter` take `share` of the slots, tagged with `name`."""

    name: str | None
    share: float
    filter: BoundFilter


@dataclass(frozen=True)
class Asked:
    """A request's filter and promotion, bound to their values (None: not asked)."""

    filter: BoundFilter | None = None
    promotion: Promotion | None = None

    def exclude_purchased(self, default: bool) -> bool:
        """A request's filter decides alone (as in Personalize); without one, the engine's
        setting (MGRECS_EXCLUDE_PURCHASED) does."""
        return default if self.filter is None else self.filter.excludes_purchases


NOTHING_ASKED = Asked()


class Filters:
    """The configured filters by ARN, parsed once at start."""

    def __init__(self, settings: Settings) -> None:
        self._by_arn: dict[str, Filter | ValueError] = {}
        for name, expression in settings.engine_filters.items():
            arn = settings.filter_arn_prefix + name
            try:
                self._by_arn[arn] = parse_filter(expression)
            except ValueError as exc:
                log.error("filter_unusable", filter_arn=arn, error=str(exc))
                self._by_arn[arn] = exc

    @property
    def arns(self) -> list[str]:
        return sorted(self._by_arn)

    def bind(self, arn: str, values: Mapping[str, str] | None, member: str = "") -> BoundFilter:
        """The filter at `arn` with `values`; unknown ARN: ResourceNotFoundException, any
        other problem: InvalidInputException (prefixed with the request `member`)."""
        parsed = self._by_arn.get(arn)
        if parsed is None:
            raise not_found(f"Resource {arn} does not exist.")
        if isinstance(parsed, ValueError):
            raise invalid_input(f"{member}filter {arn} has an unsupported expression: {parsed}")
        try:
            return bind(parsed, values)
        except ValueError as exc:
            raise invalid_input(f"{member}{exc}") from exc

    def asked(
        self,
        filter_arn: str | None,
        filter_values: Mapping[str, str] | None,
        promotions: list[protocol.Promotion] | None = None,
    ) -> Asked:
        """What the request's filter members and its (at most one) promotion ask."""
        if filter_values and not filter_arn:
            raise invalid_input("filterValues given without a filterArn")
        bound = self.bind(filter_arn, filter_values) if filter_arn else None
        promotion = None
        if promotions:
            asked = promotions[0]
            promotion = Promotion(
                asked.name,
                asked.percent_promoted_items / 100,
                self.bind(asked.filter_arn, asked.filter_values, "promotions[0]: "),
            )
        return Asked(bound, promotion)
