"""The DP agent: a small REST service beside a data provider's records.

The connector asks it one question, "who is this subject?", and gets the record or a plain
"not found". Everything the app uses arrives through :func:`create_agent_app`, so tests and
demos can run several agents side by side and nothing is read from the environment.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from pavilion.dpagent.auth import ApiKeyMiddleware
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.faults import FaultInjector, InjectedFault, Outcome
from pavilion.dpagent.models import Health, LookupFound, LookupNotFound, LookupRequest, RosterRecord
from pavilion.dpagent.oprf_routes import install_oprf_routes
from pavilion.dpagent.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldProblem,
    Problem,
    error_response,
    problem_response,
)
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.security import install_security
from pavilion.errors import InvalidRequest, PavilionError
from pavilion.observability.logging import get_logger

log = get_logger("pavilion.dpagent")

#: Paths served without an API key: liveness probes carry no credentials.
PUBLIC_PATHS: Final = frozenset({"/healthz"})

_PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "No or wrong API key."),
        (422, "The body is not JSON or not a lookup request."),
        (500, "The agent failed (or was told to, by fault injection)."),
    )
}


@dataclass
class AgentState:
    """What the handlers share; one per app, so agents in one process never mix records."""

    records: RecordIndex
    faults: FaultInjector
    lookup_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def create_agent_app(
    config: AgentConfig, records: RecordIndex, *, rng: random.Random | None = None
) -> FastAPI:
    """Build the agent's ASGI app.

    ``rng`` drives fault injection; by default it is ``random.Random(config.faults.seed)``.
    """
    state = AgentState(
        records=records,
        faults=FaultInjector(
            config.faults, rng if rng is not None else random.Random(config.faults.seed)
        ),
    )
    app = FastAPI(
        title="Pavilion DP agent",
        summary="Answers the Pavilion connector's subject lookups from a data provider's records.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    if config.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key, public_paths=PUBLIC_PATHS)
    install_security(app, config.security, PUBLIC_PATHS)  # OAuth2 bearer tokens, if configured
    _add_error_handlers(app)
    _add_routes(app, state)
    if config.oprf is not None:  # private set membership, docs/PRIVACY.md
        install_oprf_routes(app, config.oprf)
    _document_problems_as_problem_json(app)
    return app


def _add_routes(app: FastAPI, state: AgentState) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> Health:
        """Liveness and the number of records served; needs no API key."""
        return Health(records=len(state.records))

    @app.post(
        "/v1/lookup",
        tags=["lookup"],
        response_model=LookupFound | LookupNotFound,
        responses=_PROBLEM_RESPONSES,
    )
    async def lookup(body: LookupRequest) -> LookupFound | LookupNotFound | Response:
        """The record every given identifier points at, or ``{"found": false}``.

        An unknown subject is a 200, not a 404, so it cannot be confused with a wrong URL.
        """
        started = time.perf_counter()
        number = next(state.lookup_numbers)
        decision = state.faults.decide()
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        answer: LookupFound | LookupNotFound | Response
        if decision.outcome is Outcome.ERROR:
            outcome = "injected_error"
            answer = error_response(500, InjectedFault("failed on purpose (fault injection)"))
        elif decision.outcome is Outcome.GARBAGE:
            outcome = "injected_garbage"
            answer = Response(decision.garbage, media_type="application/json")
        elif (record := state.records.find(body.identifiers.given())) is None:
            outcome = "not_found"
            answer = LookupNotFound()
        else:
            outcome = "found"
            answer = LookupFound(record=RosterRecord.of(record), as_of=state.records.as_of)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("dp_agent.lookup", lookup=number, outcome=outcome, duration_ms=elapsed_ms)
        return answer


def _document_problems_as_problem_json(app: FastAPI) -> None:
    """FastAPI files every response model under application/json; errors are problem+json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    response["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(app: FastAPI) -> None:
    """Every error leaves as problem+json, and none repeats what the caller sent."""

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [_field_problem(error) for error in exc.errors()]
        log.info("dp_agent.request_invalid", outcome="invalid", problems=len(problems))
        detail = "the body is not a valid lookup request"
        return problem_response(
            422,
            code=InvalidRequest.code,
            title=InvalidRequest.title,
            detail=detail,
            errors=problems,
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = HTTPStatus(exc.status_code)
        return problem_response(
            status,
            code=status.phrase.lower().replace(" ", "-"),
            title=status.phrase,
            detail=f"{status.description}; see docs/DP_AGENT.md for the API",
            headers=exc.headers,
        )

    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        log.error("dp_agent.internal_error", outcome="internal_error", error=type(exc).__name__)
        return error_response(500, PavilionError("the agent failed; see its logs"))

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


def _field_problem(error: Any) -> FieldProblem:
    """Name the field and the rule, leaving out pydantic's echo of the input."""
    location = [str(part) for part in error["loc"]]
    if error["type"] == "json_invalid":
        return FieldProblem(field="body", message=f"invalid JSON: {error['ctx']['error']}")
    path = location[1:] if location[:1] == ["body"] and len(location) > 1 else location
    return FieldProblem(field=".".join(path), message=error["msg"])
