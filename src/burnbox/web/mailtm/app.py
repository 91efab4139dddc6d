"""The mail.tm listener's ASGI application: its routes at the root path (clients build
URLs as base + "/messages"), mail.tm's error shapes, the same body bound and security
headers as burnbox's own API, and CORS open to every origin (browser clients such as
DuckMail's call it from their own pages; a bearer token, never a cookie, authorises)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from burnbox import __version__
from burnbox.web.app import BodyLimit, SecurityHeaders
from burnbox.web.mailtm import errors, mercure, routes
from burnbox.web.services import WebServices


async def healthz() -> dict[str, str]:
    """For the start-up self-check: answers outside the request budget."""
    return {"status": "ok"}


def create_mailtm_app(services: WebServices) -> FastAPI:
    app = FastAPI(
        title="burnbox: mail.tm-compatible API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        description="mail.tm's API over burnbox inboxes. See docs/mailtm.md.",
    )
    app.state.services = services
    errors.install(app)
    app.add_api_route("/healthz", healthz, include_in_schema=False)
    app.include_router(routes.router)
    app.include_router(mercure.router)
    app.add_middleware(BodyLimit)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Accept", "Last-Event-ID"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders)
    return app
