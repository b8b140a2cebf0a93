"""No request leaves the event loop for FastAPI's thread pool: every dependency is async.

FastAPI runs a plain (``def``) dependency or handler in its thread pool, a hand-off to another
thread and back on every request that uses it (four per VC-API verification, measured)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from pavilion.api.app import create_app
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI may keep them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _api_routes(nested.routes)
        elif isinstance(route, APIRoute):
            yield route


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call] if dependant.call is not None else []
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


async def test_every_route_handler_and_dependency_is_a_coroutine_function(
    tmp_path: Path,
) -> None:
    runtime = build_runtime(load_settings(None, data_dir=tmp_path))
    try:
        app = create_app(runtime, owns_runtime=False)
        routes = list(_api_routes(app.routes))
        assert len(routes) > 70
        blocking = sorted(
            {
                f"{route.path}: {getattr(call, '__qualname__', call)}"
                for route in routes
                for call in _calls(route.dependant)
                if not inspect.iscoroutinefunction(call)
                and not inspect.iscoroutinefunction(getattr(call, "__call__", None))
            }
        )
        assert not blocking, blocking
    finally:
        await runtime.aclose()
