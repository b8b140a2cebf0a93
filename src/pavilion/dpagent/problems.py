"""RFC 9457 problem details, the one error format of the agent.

The problem ``type`` and ``title`` come from the :mod:`pavilion.errors` tree, so the connector
sees the same vocabulary from its DP agents as from itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel
from starlette.responses import JSONResponse

from pavilion.errors import PROBLEM_TYPE_BASE, InvalidRequest, PavilionError

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
#: The connector's scheme: ``https://pavilion.example/problems/<code>``.
PROBLEM_TYPE_PREFIX: Final = PROBLEM_TYPE_BASE


class FieldProblem(BaseModel):
    """One broken field of a request; names the field, never repeats its value."""

    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_response(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Render one problem as ``application/problem+json`` with the given HTTP status."""
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + code, title=title, status=status, detail=detail, errors=errors
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def error_response(
    status: int, error: PavilionError, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Render a :class:`PavilionError` with its own code, title and detail."""
    errors = (
        [FieldProblem.model_validate(item) for item in error.errors]
        if isinstance(error, InvalidRequest) and error.errors
        else None
    )
    return problem_response(
        status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        errors=errors,
        headers=headers,
    )
