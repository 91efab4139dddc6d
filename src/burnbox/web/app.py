"""The ASGI application: the API, live push, health, metrics, security headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped,unused-ignore]
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnbox import __version__
from burnbox.web import errors
from burnbox.web.api import build_router
from burnbox.web.live import build_live_router
from burnbox.web.services import WebServices

MAX_BODY = 16 * 1024  # bytes of request body the API reads; the largest real one is ~200
STATIC = Path(__file__).parent / "static"
STATS_TIMEOUT = 2.0  # seconds a scrape waits for the store's totals before serving the last ones
API_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>burnbox API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script></body></html>"""

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class HttpMiddleware:
    """Pure ASGI middleware for plain HTTP; WebSocket and lifespan pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    """Adds the security headers to every response that does not set its own."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit(HttpMiddleware):
    """Refuses request bodies over MAX_BODY with 413, whether or not they declare a length."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await _too_large(send)
            return
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise errors.ApiError(413, "payload_too_large", "Request body too large.")
            return message

        await self.app(scope, bounded_receive, send)


async def _too_large(send: Send) -> None:
    body = json.dumps({"error": {"code": "payload_too_large",
                                 "message": f"Request bodies are limited to {MAX_BODY} bytes."}})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})


def create_app(services: WebServices) -> FastAPI:
    metrics, readiness = services.metrics, services.readiness
    app = FastAPI(title="burnbox", version=__version__, openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Disposable inboxes: create one, wait for mail, read it. "
                              "See docs/api.md.")
    errors.install(app)
    # Swagger UI from the swagger-ui-bundle package: no third-party host, no inline script.
    app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS_PAGE)

    app.include_router(build_router(services))
    app.include_router(build_live_router(services))

    @app.get("/healthz", tags=["operations"], summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The store is reachable and listeners are up.",
             responses={503: {"description": "Not ready."}})
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (numbers only).",
             response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}})
    async def prometheus_metrics() -> Response:
        # Other nodes and workers write the shared store too: read its totals afresh. If
        # the store is down, the last totals are served with everything else.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(services.store.refresh_stats(), STATS_TIMEOUT)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app
