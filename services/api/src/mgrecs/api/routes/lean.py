"""A route class for the hot GET routes: their path and query parameters validated by the
parameters' own pydantic fields and the endpoint called, without FastAPI's per-request
dependency solving and handler wrappers (bench/RESULTS.md, the api's per-request floor,
third pass). Whatever the lean path is not sure of, a missing or invalid parameter above
all, goes to FastAPI's own handling, so 422 bodies, defaults and errors stay FastAPI's."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, params, routing
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import _get_param_model
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import Json
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

NO_QUERY = QueryParams("")
IMMUTABLE = (int, float, str, bool, bytes, type(None))


@dataclass(frozen=True)
class Param:
    """A path or query parameter read as FastAPI reads it (`_get_multidict_value`)."""

    field: ModelField
    name: str
    alias: str
    loc: tuple[str, str]
    many: bool
    """A list parameter (`?category=a&category=b`): all its values, else the last."""


class LeanRoute(APIRoute):
    """An `APIRoute` that, when its endpoint is an async function of path and query
    parameters (and the request) answering a response model, answers GETs as an ASGI app of
    its own: no dependency solving, no exit stacks per request (no dependency has any). Its
    errors (404s raised by the endpoint) reach the app's `ExceptionMiddleware`, whose
    handlers are the ones FastAPI's route wrapper would have used. Other routes of its router
    keep FastAPI's handling. Lean only as the app's own route (`flat_routes`): through
    `include_router`, FastAPI 0.165 serves an included route with a handler of its own."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        lean = _lean_app(self, self.app)
        self.lean = lean is not None
        if lean is not None:
            self.app = lean


def flat_routes(app: FastAPI, router: APIRouter) -> None:
    """`router`'s routes as `app`'s own, in the place `include_router` would put them (the
    OpenAPI document is the same), matched without an included router's prefix check and
    per-request route view: for a router included without options of its own."""
    app.router.routes.extend(router.routes)


def _lean_app(route: APIRoute, full: ASGIApp) -> ASGIApp | None:
    """The lean ASGI app of `route`, None when it does not qualify (then `full` serves)."""
    dependant = route.dependant
    field = route.response_field
    call = dependant.call
    if (
        field is None
        or not isinstance(route.response_class, DefaultPlaceholder)
        or route.methods != {"GET"}
        or route.body_field is not None
        or route.stream_item_field is not None
        or route.is_json_stream
        or getattr(route, "max_body_size", None) is not None
        or dependant.dependencies
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
        or not inspect.iscoroutinefunction(call)
        or route.status_code is not None
        or route.response_model_include is not None
        or route.response_model_exclude is not None
    ):
        return None
    path_params = [_param(f) for f in dependant.path_params]
    query_params = [_param(f) for f in dependant.query_params]
    if any(p is None for p in [*path_params, *query_params]):
        return None
    path = [p for p in path_params if p is not None]
    query = [p for p in query_params if p is not None]
    request_name = dependant.request_param_name
    by_alias, exclude_unset = route.response_model_by_alias, route.response_model_exclude_unset
    exclude_defaults = route.response_model_exclude_defaults
    exclude_none = route.response_model_exclude_none

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":  # 405, as FastAPI says it
            await full(scope, receive, send)
            return
        values = _values(path, scope["path_params"])
        if values is None:
            await full(scope, receive, send)
            return
        request = Request(scope, receive, send)
        if query:
            found = _values(query, request.query_params if scope.get("query_string") else NO_QUERY)
            if found is None:
                await full(scope, receive, send)
                return
            values.update(found)
        if request_name:
            values[request_name] = request
        raw = await call(**values)
        if isinstance(raw, Response):
            await raw(scope, receive, send)
            return
        value, errors = field.validate(raw, {}, loc=("response",))
        if errors:  # as FastAPI's handler raises it
            context = routing._extract_endpoint_context(call)
            mount = scope.get("root_path", "").rstrip("/")
            context["path"] = f"GET {mount}{dependant.path}"
            raise ResponseValidationError(errors=errors, body=raw, endpoint_ctx=context)
        body = field.serialize_json(
            value,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )
        await Response(content=body, media_type="application/json")(scope, receive, send)

    return app


def _param(field: ModelField) -> Param | None:
    """`field` as a `Param`, None when FastAPI reads it in a way not done here (a model of
    parameters, a validation alias, JSON, a validated or mutable default)."""
    info = field.field_info
    if not isinstance(info, params.Path | params.Query):
        return None
    if (
        info.validation_alias is not None
        or any(type(item) is Json for item in info.metadata)
        or info.validate_default
        or (not info.is_required() and not isinstance(field.default, IMMUTABLE))
    ):
        return None
    many = field_annotation_is_sequence(info.annotation)
    if _get_param_model(field) is not None or (many and isinstance(info, params.Path)):
        return None
    alias = field.alias or field.name
    return Param(field, field.name, alias, (info.in_.value, alias), many)


def _values(fields: list[Param], received: Any) -> dict[str, Any] | None:
    """The fields' values as FastAPI validates them, or None when one is missing (and
    required) or invalid: FastAPI's handler then says why (422)."""
    values: dict[str, Any] = {}
    for param in fields:
        if param.many:
            raw = received.getlist(param.alias)
            missing = not raw
        else:
            raw = received.get(param.alias)
            missing = raw is None
        if missing:
            if param.field.field_info.is_required():
                return None
            values[param.name] = param.field.default  # immutable (`_param`)
            continue
        value, errors = param.field.validate(raw, values, loc=param.loc)
        if errors:
            return None
        values[param.name] = value
    return values
