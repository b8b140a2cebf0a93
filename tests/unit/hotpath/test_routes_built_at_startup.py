"""The connector builds its routes before traffic, not on the first requests.

FastAPI builds an included router's routes (the dependants, from every endpoint's
signature) when the first request reaches that router: about 0.3 s of CPU spread over the
first requests after a start. The app's startup builds them all at once instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi.dependencies.utils
import httpx
import pytest

from pavilion.api.app import _build_routes, create_app
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime


def _no_signature_reading(call: Any) -> Any:
    raise AssertionError(f"a route was built on the request path ({call!r})")


async def test_requests_after_the_startup_build_build_no_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = build_runtime(load_settings(None, data_dir=tmp_path))
    try:
        app = create_app(runtime, owns_runtime=False)
        _build_routes(app)
        _build_routes(app)  # idempotent: a second walk finds every router built
        monkeypatch.setattr(
            fastapi.dependencies.utils, "get_typed_signature", _no_signature_reading
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).status_code == 200
            # a route of a nested router (privacy > anoncreds), refused before any handler
            response = await client.get("/v1/anoncreds/providers/p1/registries")
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        await runtime.aclose()


async def test_without_the_startup_build_the_first_request_builds_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart, so the test above keeps meaning something if FastAPI changes."""
    runtime = build_runtime(load_settings(None, data_dir=tmp_path))
    try:
        app = create_app(runtime, owns_runtime=False)
        monkeypatch.setattr(
            fastapi.dependencies.utils, "get_typed_signature", _no_signature_reading
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(AssertionError, match="built on the request path"):
                await client.get("/healthz")
    finally:
        await runtime.aclose()
