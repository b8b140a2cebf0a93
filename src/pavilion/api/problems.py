"""RFC 9457 problem details: the one place where the exception tree meets HTTP."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pavilion import errors
from pavilion.observability.logging import get_logger
from pavilion.tenancy.oidc import IdentityProviderUnavailable

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = errors.PROBLEM_TYPE_BASE
log = get_logger(__name__)


class ProblemItem(BaseModel):
    """One entry of a problem's ``errors``: what is wrong and where, never the value sent."""

    model_config = ConfigDict(extra="allow")

    field: str | None = Field(default=None, description="The field (or column) at fault.")
    message: str
    code: str | None = Field(default=None, description="A stable slug, where one exists.")
    row: int | None = Field(default=None, description="The row of an upload, where one applies.")


class Problem(BaseModel):
    """RFC 9457 problem details, the one error format of the API. Members beyond these carry
    the error's context (for example ``verification_id`` and ``audit_index``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the problem class; its last segment is a slug.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[ProblemItem] | None = Field(
        default=None, description="Every broken field, when the request broke several."
    )


#: What each error status means wherever it appears; a route may say more for its own.
_MEANINGS: Final[Mapping[int, str]] = {
    400: "The body is not valid JSON",
    401: "No API token, or one the connector does not know (WWW-Authenticate: Bearer)",
    403: "The token's role or tenant may not do this",
    404: "Not found",
    409: "The current state forbids this",
    413: "The body is over the configured limit",
    431: "The request's headers are over the configured limit",
    422: "Invalid request: `errors` names each broken field",
    500: "The connector failed unexpectedly; the error is logged without request data",
    502: "The data provider answered, but not to its declared schema",
    503: "A dependency (the database, a data provider, the HSM) is unavailable; see Retry-After",
}


def problem_responses(
    *statuses: int, notes: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each a :class:`Problem` (published as
    ``application/problem+json``); ``notes`` replace the general meaning for this route."""
    notes = notes or {}
    return {
        status: {"model": Problem, "description": notes.get(status, _MEANINGS[status])}
        for status in sorted({*statuses, *notes})
    }


#: The problems any route behind an API token can answer.
AUTHENTICATED: Final = problem_responses(401, 403, 422)

STATUS: dict[type[errors.PavilionError], int] = {
    errors.PayloadTooLarge: 413,
    errors.BadRequest: 400,
    errors.InvalidRequest: 422,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.PolicyDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.ProviderUnavailable: 503,
    IdentityProviderUnavailable: 503,
    errors.ProviderBadResponse: 502,
    errors.ProviderError: 502,
    errors.VerificationFailed: 422,
    errors.KeystoreUnavailable: 503,
    errors.StorageUnavailable: 503,
    errors.StorageError: 500,
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
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int):  # every "unavailable, try again" error says when
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="pavilion"'
    if status >= 500:
        _log_server_error(request, exc, status)
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
    if exc.status_code == 400:  # the framework could not read the body (not UTF-8, say)
        return problem(
            400,
            "Malformed JSON",
            f"the request body could not be parsed: {exc.detail}",
            code="malformed-json",
            instance=request.url.path,
        )
    # The same slug the DP agent uses for the same status (404 not-found, 405
    # method-not-allowed): one vocabulary of problem types (docs/PROBLEMS.md).
    status = HTTPStatus(exc.status_code)
    return problem(
        exc.status_code,
        status.phrase,
        str(exc.detail),
        code=status.phrase.lower().replace(" ", "-"),
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


def _log_server_error(request: Request, exc: BaseException, status: int) -> None:
    """Every 5xx is logged with its cause: the error's class and code, the class of what it was
    raised from, and where in the code it was raised (file and line). Never its message,
    arguments or the request's data: those may hold what the caller sent."""
    cause = exc.__cause__ or exc.__context__
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    fields: dict[str, Any] = {
        "status": status,
        "error": type(exc).__name__,
        "cause": type(cause).__name__ if cause is not None else None,
        "raised_at": f"{frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else None,
        "method": request.method,
        "route": getattr(request.scope.get("route"), "path", None),
    }
    if isinstance(exc, errors.PavilionError):
        fields["code"] = exc.code
        fields.update({k: v for k, v in exc.extra.items() if k in ("cause", "sqlstate")})
    emit = log.warning if status in (502, 503) else log.error
    emit("server error", **{k: v for k, v in fields.items() if v is not None})


def _from_integrity(request: Request, exc: IntegrityError) -> JSONResponse:
    """A constraint the database enforced and no caller answered (callers answer the races
    they expect): the write conflicts with stored data."""
    log.warning("constraint refused a write", cause=type(exc.orig).__name__, path=request.url.path)
    return problem(
        409,
        "Conflict",
        "the request conflicts with stored data (a database constraint refused it)",
        code="conflict",
        instance=request.url.path,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log_server_error(request, exc, 500)
    return problem(
        500,
        "Internal error",
        "the connector failed unexpectedly; the error is logged without request data",
        code="internal",
        instance=request.url.path,
    )


def _publish_problems_as_problem_json(app: FastAPI) -> None:
    """FastAPI files a response model under the route's media type (application/json, or
    text/plain for a text route); problems leave as application/problem+json, so the
    document says that."""
    generate = app.openapi
    problem = {"schema": {"$ref": "#/components/schemas/" + Problem.__name__}}

    def openapi() -> dict[str, Any]:
        document = generate()
        for operation in (op for path in document["paths"].values() for op in path.values()):
            for response in operation.get("responses", {}).values():
                if problem in response.get("content", {}).values():
                    response["content"] = {PROBLEM_JSON: problem}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _publish_problems_as_problem_json(app)
    app.add_exception_handler(errors.PavilionError, _from_pavilion)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _from_integrity)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _from_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _from_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
