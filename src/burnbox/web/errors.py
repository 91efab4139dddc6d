"""Every HTTP error is `{"error": {"code", "message"}}` with a stable code."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from burnbox.parsing import ParseFailed
from burnbox.storage.base import NotFound, StoreError
from burnbox.web.wire import ErrorBody

RETRY_SOON = {"Retry-After": "1"}  # seconds: a passing fault on our side

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


NOT_FOUND = ApiError(404, "not_found", "No such inbox or message.")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses."""
    # The media type is named: FastAPI would otherwise document errors under the route's
    # own type (text/html, message/rfc822), and they are always JSON.
    return {
        status: {
            "model": ErrorBody,
            "description": _STATUS_CODES.get(status, "error"),
            "content": {"application/json": {}},
        }
        for status in statuses
    }


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the routes matching this path accept (RFC 9110: 405 carries Allow)."""
    allowed: set[str] = set()
    for route in app.routes:
        methods = getattr(route, "methods", None)
        regex = getattr(route, "path_regex", None)
        if methods and regex is not None and regex.match(request.url.path):
            allowed |= set(methods)
    return sorted(allowed)


def install(app: FastAPI) -> None:
    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error_response(error.status, error.code, error.message, error.headers)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code = _STATUS_CODES.get(error.status_code, "error")
        message = error.detail if isinstance(error.detail, str) else code
        headers = {
            name: value for name, value in (error.headers or {}).items() if name.lower() != "allow"
        }
        if error.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return error_response(error.status_code, code, message, headers or None)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, NotFound):
            return error_response(404, NOT_FOUND.code, NOT_FOUND.message)
        return error_response(503, "unavailable", "Try again in a moment.", RETRY_SOON)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return error_response(500, "internal", "Something went wrong on our side.")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StoreError, unavailable)  # an outage (or a NotFound let through)
    app.add_exception_handler(ParseFailed, unavailable)
    app.add_exception_handler(Exception, unexpected)
