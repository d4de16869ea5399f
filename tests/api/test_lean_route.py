"""`LeanRoute` answers as FastAPI would: the same endpoint behind a lean route and behind
FastAPI's own, asked the same arbitrary paths and query strings, give the same status,
headers and body (the 422s included); and the per-customer routes of the app are lean."""

import os
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Request
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mgrecs.api.app import create_app
from mgrecs.api.routes.lean import LeanRoute, flat_routes
from mgrecs.api.routes.params import Categories, Limit, UserId
from mgrecs.common.settings import Settings


class Echo(BaseModel):
    user_id: str
    limit: int
    category: list[str] | None
    method: str


async def echo(
    user_id: UserId, request: Request, limit: Limit = 10, category: Categories = None
) -> Echo:
    if user_id == "missing":
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    return Echo(user_id=user_id, limit=limit, category=category, method=request.method)


def _app(route_class: type[LeanRoute] | None) -> FastAPI:
    app = FastAPI()
    if route_class is None:
        router = APIRouter(prefix="/v1/users")
        router.add_api_route("/{user_id}/echo", echo, response_model=Echo, methods=["GET"])
        app.include_router(router)
    else:
        router = APIRouter(prefix="/v1/users", route_class=route_class)
        router.add_api_route("/{user_id}/echo", echo, response_model=Echo, methods=["GET"])
        flat_routes(app, router)
    return app


LEAN, FULL = _app(LeanRoute), _app(None)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
LIMITS = st.one_of(
    st.integers(-5, 120).map(str), st.sampled_from(["", "010", "+5", " 5", "1e1", "1.0", "x"])
)
QUERY = st.lists(
    st.tuples(st.sampled_from(["limit", "category", "other"]), st.one_of(LIMITS, TEXT)),
    max_size=4,
)
USERS = st.one_of(st.sampled_from(["C1", "missing", "a b", " C1", "x" * 256]), TEXT)


async def _answer(app: FastAPI, method: str, path: str) -> tuple[int, list[Any], bytes]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path)
    return response.status_code, response.headers.multi_items(), response.content


@settings(max_examples=300, deadline=None)
@given(user=USERS, query=QUERY, method=st.sampled_from(["GET", "GET", "GET", "POST"]))
async def test_a_lean_route_answers_as_fastapi(
    user: str, query: list[tuple[str, str]], method: str
) -> None:
    path = f"/v1/users/{quote(user, safe='')}/echo"
    if query:
        path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
    assert await _answer(LEAN, method, path) == await _answer(FULL, method, path)


async def test_the_lean_app_is_used() -> None:
    """Not FastAPI's handler behind it: a route that stopped qualifying fails here."""
    lean = next(r for r in LEAN.routes if isinstance(r, LeanRoute))
    assert lean.lean


def test_the_per_customer_lists_are_lean_routes() -> None:
    os.environ.setdefault("MGRECS_ENV", "development")
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    lean = {(r.path, r.lean) for r in app.routes if isinstance(r, LeanRoute)}
    assert ("/v1/users/{user_id}/recommendations", True) in lean
    assert ("/v1/users/{user_id}/buy-again", True) in lean
    assert ("/v1/users/{user_id}/rank", False) in lean  # a body: FastAPI's handler
