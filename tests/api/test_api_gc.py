"""The garbage collector of a started API: what startup built is frozen out of it, and young
collections wait for 50,000 net allocations (a queue of requests alone no longer triggers
them); the process's own thresholds come back at shutdown."""

import gc

from mgrecs.api.app import GC_THRESHOLDS, create_app
from mgrecs.common.settings import Settings
from support.helpers import asgi_client

PYTHON_DEFAULTS = (700, 10, 10)


async def test_started_api_freezes_startup_objects_and_raises_the_thresholds(
    settings: Settings,
) -> None:
    # Known thresholds first: an app another test left running (its lifespan never shut
    # down) leaves the process with the API's.
    own = gc.get_threshold()
    gc.set_threshold(*PYTHON_DEFAULTS)
    try:
        async with asgi_client(create_app(settings)) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_threshold() == PYTHON_DEFAULTS
    finally:
        gc.set_threshold(*own)
