"""A fake PutEvents target (AWS or the engine: outside the system under test)."""

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.common.personalize import BULK_EVENTS_PATH


class FakePutEvents:
    """Stands in for AWS / the engine: records PutEvents bodies (those of the engine's bulk
    requests too), fails the first few requests."""

    def __init__(self, failures: int) -> None:
        self.calls: list[dict[str, Any]] = []
        self.bulk_requests = 0
        self.failures = failures
        self.app = FastAPI()
        self.app.post("/events")(self.put_events)
        self.app.post(BULK_EVENTS_PATH)(self.put_events_bulk)

    def _failing(self) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return True
        return False

    async def put_events(self, request: Request) -> JSONResponse:
        if self._failing():
            return JSONResponse({"message": "try again"}, status_code=503)
        self.calls.append(json.loads(await request.body()))
        return JSONResponse({})

    async def put_events_bulk(self, request: Request) -> JSONResponse:
        if self._failing():
            return JSONResponse({"message": "try again"}, status_code=503)
        self.bulk_requests += 1
        self.calls.extend(json.loads(await request.body())["calls"])
        return JSONResponse({})
