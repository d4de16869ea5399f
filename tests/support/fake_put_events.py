"""A fake PutEvents target (AWS or the engine: outside the system under test)."""

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakePutEvents:
    """Stands in for AWS / the engine: records PutEvents bodies, fails the first few calls."""

    def __init__(self, failures: int) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = failures
        self.app = FastAPI()
        self.app.post("/events")(self.put_events)

    async def put_events(self, request: Request) -> JSONResponse:
        if self.failures > 0:
            self.failures -= 1
            return JSONResponse({"message": "try again"}, status_code=503)
        self.calls.append(json.loads(await request.body()))
        return JSONResponse({})
