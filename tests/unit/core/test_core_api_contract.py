"""The API is a contract: every route (deprecated aliases too) declares what it answers, every
error is a Problem in application/problem+json, and every schema of the OpenAPI document has a
name that reads well, so clients can generate code from docs/openapi.json."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Iterator
from typing import Any, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from pavilion.api.app import create_app
from pavilion.api.schemas.base import ResponseModel
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
READABLE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    runtime = build_runtime(load_settings(None, data_dir=tmp_path_factory.mktemp("contract")))
    return create_app(runtime)


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI may keep them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from api_routes(nested.routes)
        elif isinstance(route, APIRoute):
            yield route


def is_model(annotation: Any) -> bool:
    """A pydantic model, or a list of them (a JSON array of objects)."""
    if get_origin(annotation) is list:
        return all(is_model(arg) for arg in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def optional_members(annotation: Any, seen: set[type[Any]] | None = None) -> list[str]:
    """Members of the API's response models that a result may leave out (they have a
    default), anywhere in the answer."""
    seen = set() if seen is None else seen
    args = get_args(annotation)
    if args:
        return [m for arg in args for m in optional_members(arg, seen)]
    if not isinstance(annotation, type) or not issubclass(annotation, BaseModel):
        return []
    if annotation in seen:
        return []
    seen.add(annotation)
    found = []
    for name, field in annotation.model_fields.items():
        if issubclass(annotation, ResponseModel) and not field.is_required():
            found.append(f"{annotation.__name__}.{name}")
        found += optional_members(field.annotation, seen)
    return found


def response_class(route: APIRoute) -> type[Any]:
    chosen = route.response_class
    return chosen.value if isinstance(chosen, DefaultPlaceholder) else chosen


def operation(document: dict[str, Any], route: APIRoute, method: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][route.path_format][method.lower()]
    return found


def undeclared(document: dict[str, Any], route: APIRoute) -> list[str]:
    """Why the route's answer is not part of the contract (empty when it is)."""
    faults = []
    for method in sorted(route.methods):
        where = f"{method} {route.path}"
        responses = operation(document, route, method)["responses"]
        success = responses.get(str(route.status_code or 200), {})
        if route.status_code == 204:
            if route.response_model is not None or success.get("content"):
                faults.append(f"{where}: 204 with a body")
        elif issubclass(response_class(route), JSONResponse):
            if not is_model(route.response_model):
                faults.append(f"{where}: no response model ({route.response_model!r})")
        else:  # binary, JWT or text: the media type is the contract
            content = success.get("content", {})
            if not content or not all("schema" in media for media in content.values()):
                faults.append(f"{where}: {response_class(route).__name__} without media types")
    return faults


def test_every_route_declares_a_response_model_or_its_media_type(app: FastAPI) -> None:
    document = app.openapi()
    routes = list(api_routes(app.routes))
    assert len(routes) > 70
    assert any(route.deprecated for route in routes)  # the aliases are walked too
    assert [fault for route in routes for fault in undeclared(document, route)] == []


def test_members_a_result_leaves_out_stay_out_of_the_answer(app: FastAPI) -> None:
    # Without exclude_unset, a member the result does not have would appear as null.
    faults = [
        f"{route.path}: {', '.join(optional_members(route.response_model))}"
        for route in api_routes(app.routes)
        if optional_members(route.response_model) and not route.response_model_exclude_unset
    ]
    assert faults == []


def test_errors_are_problems_in_problem_json(app: FastAPI) -> None:
    faults = []
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
            if not errors:
                faults.append(f"{method.upper()} {path}: no error documented")
            for status, response in errors.items():
                if (path, status) == ("/readyz", "503"):
                    continue  # readiness answers its own report, also when not ready
                if response.get("content") != {"application/problem+json": {"schema": PROBLEM_REF}}:
                    faults.append(f"{method.upper()} {path} {status}: {response.get('content')}")
    assert faults == []


def test_every_schema_has_a_readable_name(app: FastAPI) -> None:
    names = set(app.openapi()["components"]["schemas"])
    assert {"Problem", "TenantPage", "VerificationResponse"} <= names
    assert sorted(n for n in names if not READABLE_NAME.match(n)) == []
    assert "HTTPValidationError" not in names  # validation errors are problems too


def _calls(dependant: Any) -> list[Any]:
    found = [dependant.call] if dependant.call is not None else []
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


def test_no_route_or_dependency_runs_in_a_worker_thread(app: FastAPI) -> None:
    """FastAPI runs a plain ``def`` route or dependency in a worker thread: a thread hop on
    every request it serves (about 0.1 ms of CPU on the hot path). Every one is async."""
    sync = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', call)}"
            for route in api_routes(app.routes)
            for call in _calls(route.dependant)
            if not inspect.iscoroutinefunction(call)
        }
    )
    assert sync == []
