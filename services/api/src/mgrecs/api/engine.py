"""Real-time answers from the recommendation engine (self-hosted engine or AWS Personalize).

One `personalize-runtime` client lives for the whole process; every failure (unreachable,
slow, an error answer) becomes `EngineUnavailable`, so callers can fall back. When the
engine is down (unreachable, timing out, 5xx), calls are skipped for a cool-down so that
requests do not each wait out the timeout.
"""

import asyncio
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.common.logging import get_logger
from mgrecs.common.usage import METER

ENGINE_TIMEOUT_SECONDS = 2.0
"""Budget for one real-time call, retries included: past it the frontend gets a fallback."""
ENGINE_COOLDOWN_SECONDS = 15.0
"""After the engine looked down, answer with the fallback at once for this long."""

log = get_logger(__name__)


CATEGORY_PARAMETER = "CATEGORY"
"""The placeholder of the category filter (MGRECS_CATEGORY_FILTER_ARN) the API fills."""


def filter_value(values: list[str]) -> str:
    """Personalize's list form of a filter value: `"a","b"` (quotes and backslashes escaped)."""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return ",".join(f'"{v}"' for v in escaped)


class EngineUnavailable(Exception):
    """The engine did not answer usefully; the caller should fall back."""


class Engine:
    """GetRecommendations for users and for similar items, and GetPersonalizedRanking, through
    one aioboto3 client."""

    def __init__(
        self,
        client: Any,
        user_campaign_arn: str,
        similar_campaign_arn: str,
        category_filter_arn: str,
        ranking_campaign_arn: str = "",
    ) -> None:
        self._client = client
        self._ranking_campaign_arn = ranking_campaign_arn
        self._user_campaign_arn = user_campaign_arn
        self._similar_campaign_arn = similar_campaign_arn
        self._category_filter_arn = category_filter_arn
        self._down_until = 0.0

    async def for_user(
        self,
        user_id: str,
        limit: int,
        categories: list[str] | None = None,
        campaign_arn: str | None = None,
    ) -> list[RecommendedItem]:
        """`categories`: only those, through the category filter (its `$CATEGORY`);
        `campaign_arn`: another user campaign than the configured one (an experiment arm's)."""
        request: dict[str, Any] = {
            "campaignArn": campaign_arn or self._user_campaign_arn,
            "userId": user_id,
            "numResults": limit,
        }
        if categories:
            request["filterArn"] = self._category_filter_arn
            request["filterValues"] = {CATEGORY_PARAMETER: filter_value(categories)}
        return await self._recommendations(**request)

    async def similar_to(self, product_id: str, limit: int) -> list[RecommendedItem]:
        return await self._recommendations(
            campaignArn=self._similar_campaign_arn, itemId=product_id, numResults=limit
        )

    async def rank(self, user_id: str, product_ids: list[str]) -> list[RecommendedItem]:
        """`product_ids` ordered for the customer, best first (GetPersonalizedRanking)."""
        response = await self._call(
            "get_personalized_ranking",
            campaignArn=self._ranking_campaign_arn,
            userId=user_id,
            inputList=product_ids,
        )
        return [_item(entry) for entry in response.get("personalizedRanking", [])]

    async def _recommendations(self, **request: Any) -> list[RecommendedItem]:
        response = await self._call("get_recommendations", **request)
        return [_item(entry) for entry in response.get("itemList", [])]

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One runtime call; every failure is EngineUnavailable (and may mark it down)."""
        if time.monotonic() < self._down_until:
            raise EngineUnavailable("engine marked down, cooling off")
        # Counted for the cost report whatever the answer: AWS bills the calls it receives.
        METER.call("api", operation, request["campaignArn"])
        try:
            async with asyncio.timeout(ENGINE_TIMEOUT_SECONDS):
                response: dict[str, Any] = await getattr(self._client, operation)(**request)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            if status >= 500:
                self._mark_down()
            log.warning("engine_error", error=str(exc), status=status)
            raise EngineUnavailable(str(exc)) from exc
        except (BotoCoreError, TimeoutError, OSError) as exc:
            self._mark_down()
            log.warning("engine_unreachable", error=str(exc), error_type=type(exc).__name__)
            raise EngineUnavailable(str(exc)) from exc
        return response

    def _mark_down(self) -> None:
        self._down_until = time.monotonic() + ENGINE_COOLDOWN_SECONDS


def _item(entry: dict[str, Any]) -> RecommendedItem:
    """Personalize's item shape (`itemId`, optional `score` and `reason` list) to ours."""
    reasons = entry.get("reason") or []
    return RecommendedItem(
        product_id=entry["itemId"],
        score=float(entry.get("score", 0.0)),
        reason="; ".join(reasons) if reasons else None,
    )
