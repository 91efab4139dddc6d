"""The page, the API's documentation, and what operators read: health, readiness, metrics."""

# No `from __future__ import annotations`: FastAPI must see the dependency aliases as
# real objects.

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from burnbox.web.deps import Services

router = APIRouter()
STATIC = Path(__file__).parent / "static"
STATS_TIMEOUT = 2.0  # seconds a scrape waits for the store's totals before serving the last ones
API_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>burnbox API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script></body></html>"""


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    return HTMLResponse(API_DOCS_PAGE)


@router.get("/healthz", tags=["operations"], summary="The process is alive.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["operations"],
    summary="The store answers and every part runs.",
    responses={503: {"description": "Not ready."}},
)
async def readyz(services: Services) -> JSONResponse:
    checks = await services.readiness()
    ready = all(checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "sink": services.sink is not None,  # sink mode: an open catch-all, said out loud
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics (numbers only).",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def prometheus_metrics(services: Services) -> Response:
    # Other nodes and workers write the shared store too: read its totals afresh. If the
    # store is down, the last totals are served with everything else.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(services.store.refresh_stats(services.clock()), STATS_TIMEOUT)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
