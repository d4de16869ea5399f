"""The OpenAPI document, made to say what the API really answers.

FastAPI documents its own 422 body (`detail` as a list of errors); app.py answers invalid
requests with `detail` as one readable message naming the parameters and the list under
`errors`. Clients (and the schemathesis run in the tests) validate against this document.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

INVALID_REQUEST = {
    "title": "InvalidRequest",
    "type": "object",
    "description": "A request that did not validate: which parameters, and why.",
    "properties": {
        "detail": {
            "type": "string",
            "title": "Detail",
            "examples": ["query.limit: Input should be less than or equal to 100"],
        },
        "errors": {
            "type": "array",
            "title": "Errors",
            "items": {"$ref": "#/components/schemas/ValidationError"},
        },
    },
    "required": ["detail", "errors"],
}


def install(app: FastAPI) -> None:
    """Replace `app.openapi` by one whose 422 answers have the shape app.py sends."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = INVALID_REQUEST
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
