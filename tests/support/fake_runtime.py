"""A stand-in for the Personalize runtime (outside the system under test) for the api's
realtime answers."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeRuntime:
    """A stand-in for the Personalize runtime endpoint (outside the system under test):
    answers GetRecommendations in the botocore rest-json shape and records the requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/recommendations")(self.recommendations)

    async def recommendations(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if body.get("userId") == "c3":
            return JSONResponse(
                status_code=404,
                content={"message": "no such campaign"},
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        seed = body.get("userId") or body.get("itemId")
        items = [
            {"itemId": f"rt-{seed}-{rank}", "score": round(1 - rank / 10, 2)}
            for rank in range(body["numResults"])
        ]
        if items:
            items[0]["reason"] = ["fresh"]
        return JSONResponse({"itemList": items, "recommendationId": "RID-1"})
