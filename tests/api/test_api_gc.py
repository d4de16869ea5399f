"""The garbage collector of a started API: what startup built is frozen out of it, and young
collections wait for 50,000 net allocations (a queue of requests alone no longer triggers
them); the process's own thresholds come back at shutdown."""

import gc

from mgrecs.api.app import GC_THRESHOLDS, create_app
from mgrecs.common.settings import Settings
from support.helpers import asgi_client


async def test_started_api_freezes_startup_objects_and_raises_the_thresholds(
    settings: Settings,
) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    async with asgi_client(create_app(settings)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
