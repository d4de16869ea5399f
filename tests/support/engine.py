"""The engine service as the tests drive it: a model trained on known lines registered the
way the batch service registers one, and the real aioboto3 clients calling the engine."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.personalize import events_client, runtime_client
from mgrecs.common.settings import Settings
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction, ProductInfo
from mgrecs.store.model_versions import RECIPE, ModelVersion, register

NOW = datetime.now(UTC)


def bundle_lines(partner: str = "B") -> list[Interaction]:
    """A+partner bought together by 6 northern customers; X bought alone by 10 (most popular);
    S popular in the south only."""
    lines = []
    for n in range(6):
        lines.append(Interaction(f"ab{n}", "A", 1, NOW - timedelta(days=2), "north"))
        lines.append(Interaction(f"ab{n}", partner, 1, NOW - timedelta(days=2), "north"))
    for n in range(10):
        lines.append(Interaction(f"x{n}", "X", 1, NOW - timedelta(days=1), "north"))
    for n in range(3):
        lines.append(Interaction(f"s{n}", "S", 1, NOW - timedelta(days=1), "south"))
    return lines


async def register_model(
    pool: asyncpg.Pool,
    settings: Settings,
    version: str,
    lines: list[Interaction],
    products: list[ProductInfo] | None = None,
    trained_at: datetime | None = None,
) -> None:
    """What the batch service does: save the artifact, make it the one active version."""
    model = RecommenderModel.fit(lines, products=products)
    path = Path(settings.artifact_dir) / f"{version}.npz"
    model.save(path)
    registered = ModelVersion(
        version,
        RECIPE,
        str(path),
        len(model.customer_ids),
        len(model.item_ids),
        model.n_interactions,
        trained_at=trained_at,
    )
    await register(pool, registered, promote=True, reason="registered by the test")


async def recommend(settings: Settings, **request: Any) -> dict[str, Any]:
    async with runtime_client(settings) as client:
        request.setdefault("campaignArn", settings.user_campaign_arn)
        return await client.get_recommendations(**request)  # type: ignore[no-any-return]


async def put_purchase(
    settings: Settings, user_id: str, item_id: str, event_id: str, region: str = "north"
) -> None:
    async with events_client(settings) as client:
        await client.put_events(
            trackingId=settings.tracking_id,
            userId=user_id,
            sessionId=f"session-{user_id}",
            eventList=[
                {
                    "eventId": event_id,
                    "eventType": "purchase",
                    "itemId": item_id,
                    "sentAt": datetime.now(UTC),
                    "properties": json.dumps({"region": region}),
                }
            ],
        )


def item_ids(response: dict[str, Any], key: str = "itemList") -> list[str]:
    return [item["itemId"] for item in response[key]]
