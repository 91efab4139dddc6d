"""Errors in mail.tm's shapes (Hydra errors and constraint-violation lists in JSON-LD,
problem details in plain JSON, the JWT layer's `{code, message}` for 401), each also with
burnbox's stable `{"error": {"code", "message"}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from burnbox.parsing import ParseFailed
from burnbox.storage.base import NotFound, StoreError
from burnbox.web.errors import RETRY_SOON, ApiError, allowed_methods
from burnbox.web.mailtm.shapes import LD, PLAIN, Json, wants_plain

TITLE = "An error occurred"
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}
Violation = tuple[str, str]  # (property path, message)


class MailtmError(ApiError):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        violations: list[Violation] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, CODES.get(status, "error"), message, headers)
        self.violations = violations or []


NOT_FOUND = MailtmError(404, "Not Found")
NO_TOKEN = MailtmError(401, "JWT Token not found")
BAD_TOKEN = MailtmError(401, "Invalid JWT Token")


def documented(*statuses: int, ok: int | None = 200) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=`: the success (a JSON-LD or plain JSON document) and the
    given error statuses, in either format."""
    formats: dict[str, object] = {"application/ld+json": {}, "application/json": {}}
    found: dict[int | str, dict[str, object]] = {
        status: {"description": CODES.get(status, "error"), "content": formats}
        for status in (*statuses, 429)
    }
    if ok is not None:
        found[ok] = {"description": "OK", "content": formats}
    return found


def body(error: ApiError, plain: bool) -> Json:
    stable = {"error": {"code": error.code, "message": error.message}}
    if error.status == 401:  # what mail.tm's JWT layer answers, in either format
        return {"code": 401, "message": error.message, **stable}
    violations = error.violations if isinstance(error, MailtmError) else []
    listed = [{"propertyPath": path, "message": text} for path, text in violations]
    detail = "\n".join(f"{path}: {text}" for path, text in violations) or error.message
    extra: Json = {"violations": listed} if violations else {}
    if plain:
        shape: Json = {"type": "https://tools.ietf.org/html/rfc2616#section-10", "title": TITLE}
        return {**shape, "status": error.status, "detail": detail, **extra, **stable}
    kind = "ConstraintViolationList" if violations else "Error"
    return {
        "@context": f"/contexts/{kind}",
        "@type": kind if violations else "hydra:Error",
        "hydra:title": TITLE,
        "hydra:description": detail,
        "detail": detail,
        **extra,
        **stable,
    }


def respond(request: Request, error: ApiError) -> JSONResponse:
    plain = wants_plain(request.headers.get("accept", ""))
    return JSONResponse(
        body(error, plain),
        status_code=error.status,
        headers=error.headers,
        media_type=PLAIN if plain else LD,
    )


def install(app: FastAPI) -> None:
    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return respond(request, error)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        message = error.detail if isinstance(error.detail, str) else "error"
        headers = {
            name: value for name, value in (error.headers or {}).items() if name.lower() != "allow"
        }
        if error.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return respond(request, MailtmError(error.status_code, message, headers=headers or None))

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        violations = [
            (".".join(str(part) for part in item.get("loc", ())[1:]), str(item.get("msg", "")))
            for item in error.errors()[:10]
        ]
        syntax = any(item.get("type") == "json_invalid" for item in error.errors())
        status = 400 if syntax else 422  # mail.tm: 400 for a body that is not JSON
        return respond(request, MailtmError(status, "Invalid request", violations=violations))

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, NotFound):
            return respond(request, NOT_FOUND)
        return respond(request, MailtmError(503, "Try again in a moment.", headers=RETRY_SOON))

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return respond(request, MailtmError(500, "Something went wrong on our side."))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StoreError, unavailable)
    app.add_exception_handler(ParseFailed, unavailable)
    app.add_exception_handler(Exception, unexpected)
