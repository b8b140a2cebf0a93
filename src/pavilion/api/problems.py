"""RFC 9457 problem details: the one place where the exception tree meets HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pavilion import errors
from pavilion.observability.logging import get_logger

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://pavilion.example/problems/"
log = get_logger(__name__)

STATUS: dict[type[errors.PavilionError], int] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidRequest: 422,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.PolicyDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.ProviderUnavailable: 503,
    errors.ProviderBadResponse: 502,
    errors.ProviderError: 502,
    errors.VerificationFailed: 422,
    errors.StorageError: 503,
    errors.ConfigurationError: 500,
    errors.CryptoError: 500,
}


def status_for(exc: errors.PavilionError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in members.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _from_pavilion(request: Request, exc: errors.PavilionError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    members: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, errors.InvalidRequest) and exc.errors:
        members["errors"] = exc.errors
    if isinstance(exc, errors.ProviderUnavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="pavilion"'
    if status >= 500 and not isinstance(exc, errors.ProviderError | errors.StorageError):
        log.error("internal error", error=type(exc).__name__, path=request.url.path)
    return problem(
        status,
        exc.title,
        exc.detail,
        code=exc.code,
        instance=request.url.path,
        headers=headers or None,
        **members,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _from_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    items = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return problem(
                400,
                "Malformed JSON",
                f"the request body is not valid JSON: {error.get('ctx', {}).get('error', '')}",
                code="malformed-json",
                instance=request.url.path,
            )
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        items.append({"field": _field_path(tuple(error.get("loc", ()))), "message": message})
    first = items[0] if items else {"field": "body", "message": "invalid"}
    return problem(
        422,
        "Invalid request",
        f"{first['field']}: {first['message']}"
        + (f" (and {len(items) - 1} more)" if len(items) > 1 else ""),
        code="invalid-request",
        instance=request.url.path,
        errors=items,
    )


def _from_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed"}
    return problem(
        exc.status_code,
        titles.get(exc.status_code, "HTTP error"),
        str(exc.detail),
        code=f"http-{exc.status_code}",
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", error=type(exc).__name__, path=request.url.path)
    return problem(
        500,
        "Internal error",
        "the connector failed unexpectedly; the error is logged without request data",
        code="internal",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.PavilionError, _from_pavilion)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _from_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _from_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
