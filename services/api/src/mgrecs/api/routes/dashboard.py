"""`/dashboard`: the page people look at, served with its own scripts (no CDN, works offline).

The page only calls the API's JSON endpoints from the browser; it is kept out of the OpenAPI
schema because it is not part of the API contract.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html")


def mount(app: FastAPI) -> None:
    """The page and its static files (scripts, styles) under /dashboard/static/."""
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
