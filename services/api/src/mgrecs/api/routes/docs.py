"""`/docs`: the OpenAPI page (Swagger UI) from files the API serves itself, so it works
offline and under the API's Content-Security-Policy (no CDN, no inline script)."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
"""swagger-ui's bundle, style sheet and icon, as the fastapi-offline package ships them."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mgrecs API - Swagger UI</title>
<link rel="icon" href="/docs/swagger/favicon.png">
<link rel="stylesheet" href="/docs/swagger/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger/swagger-ui-bundle.js"></script>
<script src="/dashboard/static/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


def mount(app: FastAPI) -> None:
    """`/docs` and its files under `/docs/swagger/` (the app is made with docs_url=None; the
    page's initializer is static/docs.js, beside the dashboard's files)."""
    app.include_router(router)
    app.mount("/docs/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")
