"""The ASGI application: the routers, error handlers, body bound, security headers."""

from __future__ import annotations

import json
import logging
import re

import swagger_ui_bundle  # type: ignore[import-untyped,unused-ignore]
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnbox import __version__
from burnbox.ratelimit import RateLimiter
from burnbox.web import api, errors, handles, hooks, live, operations
from burnbox.web.mailhog import routes as mailhog
from burnbox.web.mailpit import about as mailpit_about
from burnbox.web.mailpit import checks as mailpit_checks
from burnbox.web.mailpit import common as mailpit_common
from burnbox.web.mailpit import events as mailpit_events
from burnbox.web.mailpit import queries as mailpit_queries
from burnbox.web.mailpit import release as mailpit_release
from burnbox.web.mailpit import routes as mailpit
from burnbox.web.mailpit import sending as mailpit_sending
from burnbox.web.mailpit import tags as mailpit_tags
from burnbox.web.mailpit import testing as mailpit_testing
from burnbox.web.mailpit import views as mailpit_views
from burnbox.web.services import WebServices
from burnbox.web.sink_auth import SinkAuth

log = logging.getLogger(__name__)
AUTH_FAILURES = (30, 2.0)  # wrong sink passwords one client may try: a burst, then one per 2 s
_SLASHES = re.compile(rb"/{2,}")
MAX_BODY = 16 * 1024  # bytes of request body the API reads; the largest real one is ~200
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
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
    """The security headers on every response that does not set its own, and a JSON 500
    for any fault below it (Starlette's own error page would carry none of them)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            # The type only: an exception's text may carry an address.
            log.error("request failed (%s)", type(error).__name__)
            if not started:
                await _json(send_with_headers, 500, "internal", "Something went wrong on our side.")


class CleanPaths(HttpMiddleware):
    """A path with empty segments (`//view/1.html`: cypress-mailpit builds its /view URLs
    so) is redirected to the same path without them, as Go's ServeMux, and so Mailpit,
    does: 301 for GET and HEAD, 308 (the method and body kept) for the rest. The location
    always starts with one slash: never another host."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"//" not in raw:
            await self.app(scope, receive, send)
            return
        location = _SLASHES.sub(b"/", raw.split(b"?", 1)[0])
        if scope.get("query_string"):
            location += b"?" + scope["query_string"]
        status = 301 if scope["method"] in ("GET", "HEAD") else 308
        headers = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class BodyLimit(HttpMiddleware):
    """Refuses request bodies over MAX_BODY with 413, declared or chunked: the body (small
    here by design) is read first, then handed on. `larger` names the paths that carry a
    whole message (Mailpit's send), with their own bound."""

    def __init__(self, app: ASGIApp, larger: dict[str, int] | None = None) -> None:
        super().__init__(app)
        self._larger = larger or {}

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._larger.get(scope.get("path", ""), MAX_BODY)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went: hand on what there is
            body += message.get("body", b"")
            if len(body) > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    await _json(send, 413, "payload_too_large", f"Request bodies are limited to {limit} bytes.")


async def _json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(services: WebServices) -> FastAPI:
    app = FastAPI(
        title="burnbox",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        description="Disposable inboxes: create one, wait for mail, read it. See docs/api.md.",
    )
    app.state.services = services
    errors.install(app)
    # Swagger UI from the swagger-ui-bundle package: no third-party host, no inline script.
    app.mount(
        "/api/docs/assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-ui",
    )
    app.mount("/static", StaticFiles(directory=operations.STATIC), name="static")
    for router in (operations.router, api.router, live.router, hooks.router, handles.router):
        app.include_router(router)
    larger = _serve_sink(app, services) if services.sink is not None else {}
    app.add_middleware(BodyLimit, larger=larger)
    app.add_middleware(CleanPaths)
    if services.sink is not None and services.sink.users:  # outermost: nothing runs before it
        app.add_middleware(
            SinkAuth,
            users=services.sink.users,
            failures=RateLimiter(*AUTH_FAILURES),
            clock=lambda: services.clock().timestamp(),
        )
    app.add_middleware(SecurityHeaders)
    return app


def _serve_sink(app: FastAPI, services: WebServices) -> dict[str, int]:
    """Mailpit's and MailHog's APIs (sink mode only); the paths with a larger body bound."""
    assert services.sink is not None
    if services.sink.api == "mailpit":  # first: it owns the paths where they clash
        app.include_router(mailpit.owned)
    for module in (mailpit, mailpit_queries, mailpit_views, mailpit_events, mailpit_sending):
        app.include_router(module.router)
    for module in (mailpit_checks, mailpit_release, mailpit_testing):
        app.include_router(module.router)
    for module in (mailpit_about, mailpit_tags, mailhog):
        app.include_router(module.router)
    app.add_exception_handler(mailpit_common.Failed, _mailpit_failed)
    # Mailpit's send carries a whole message, in base64, in JSON.
    return {mailpit_sending.PATH: services.sink.max_message * 4 // 3 + 64 * 1024}


async def _mailpit_failed(_: Request, failure: Exception) -> Response:
    assert isinstance(failure, mailpit_common.Failed)
    return mailpit_common.answer(failure)
