"""The route table answers exact paths by one lookup and routes every request exactly where
FastAPI's own router walk would: same route, same scope, same errors; anything it does not
know (path parameters, a wrong method, a trailing slash, a shadowed path) goes to the
framework."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from pydantic import BaseModel

from pavilion.api import route_table
from pavilion.api.app import create_app
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime


class Body(BaseModel):
    name: str
    count: int = 1


class Out(BaseModel):
    route: str
    endpoint: str
    params: dict[str, str]
    name: str = ""
    caller: str = ""


async def caller(x_caller: Annotated[str | None, Header()] = None) -> str:
    return x_caller or "anonymous"


def _seen(request: Request, who: str, name: str = "") -> Out:
    return Out(
        route=request.scope["route"].path,
        endpoint=request.scope["endpoint"].__name__,
        params=dict(request.path_params),
        name=name,
        caller=who,
    )


def build_app(*, with_table: bool) -> FastAPI:
    items = APIRouter(prefix="/items", tags=["items"])

    @items.get("/{item}")
    async def item_by_id(item: str, request: Request, who: Annotated[str, Depends(caller)]) -> Out:
        return _seen(request, who)

    @items.get("/fixed")  # shadowed: the parameterised route above is declared first
    async def item_fixed(request: Request, who: Annotated[str, Depends(caller)]) -> Out:
        return _seen(request, who, "fixed")

    @items.post("", status_code=201)
    async def create_item(
        body: Body, request: Request, who: Annotated[str, Depends(caller)]
    ) -> Out:
        return _seen(request, who, body.name)

    inner = APIRouter(prefix="/inner")

    @inner.post("/deep")
    async def deep(body: Body, request: Request, who: Annotated[str, Depends(caller)]) -> Out:
        return _seen(request, who, body.name * body.count)

    outer = APIRouter(prefix="/outer")
    outer.include_router(inner)

    app = FastAPI()
    app.include_router(items)
    app.include_router(outer)

    async def direct(request: Request) -> Out:
        return _seen(request, "direct")

    app.add_api_route("/direct", direct, methods=["GET"])
    if with_table:
        route_table.install(app.router)
    return app


REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/items", {"name": "a"}),
    ("POST", "/items", {"name": 5}),  # 422 from the body model
    ("POST", "/items", None),  # 422: no body
    ("GET", "/items", None),  # 405 from the framework
    ("POST", "/items/", {"name": "a"}),  # trailing slash: the framework's redirect
    ("GET", "/items/fixed", None),  # the parameterised route keeps it
    ("GET", "/items/42", None),
    ("POST", "/outer/inner/deep", {"name": "ab", "count": 2}),
    ("PUT", "/outer/inner/deep", {"name": "ab"}),
    ("GET", "/direct", None),
    ("GET", "/nowhere", None),
    ("GET", "/openapi.json", None),
]


def _answers(app: FastAPI) -> list[tuple[int, str, str]]:
    out = []
    with TestClient(app, follow_redirects=False) as client:
        for method, path, body in REQUESTS:
            response = client.request(method, path, json=body, headers={"x-caller": "c1"})
            out.append((response.status_code, response.headers.get("allow", ""), response.text))
    return out


def test_every_request_reaches_what_the_framework_would_reach() -> None:
    expected = _answers(build_app(with_table=False))
    got = _answers(build_app(with_table=True))
    assert got == expected
    assert expected[0][0] == 201
    assert '"name":"a"' in expected[0][2]
    assert expected[1][0] == 422
    assert expected[3][0] == 405
    assert '"name":""' in expected[5][2]
    assert '"item":"fixed"' in expected[5][2]
    assert '"name":"abab"' in expected[7][2]
    assert '"caller":"c1"' in expected[7][2]


def test_the_table_holds_the_exact_routes_the_framework_picks() -> None:
    app = build_app(with_table=True)
    table = app.router.middleware_stack
    assert isinstance(table, route_table.RouteTable)
    paths = table.paths()
    assert ("POST", "/items") in paths
    assert ("POST", "/outer/inner/deep") in paths
    assert ("GET", "/direct") in paths
    assert ("GET", "/items/fixed") not in paths  # shadowed by /items/{item}
    assert not any("{" in path for _, path in paths)
    assert ("GET", "/openapi.json") not in paths  # a Starlette route: the framework's


def test_unknown_framework_internals_leave_every_request_to_the_framework(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(route_table, "included_router_name", "_NoSuchRouter")
    assert not hasattr(fastapi_routing, "_NoSuchRouter")
    app = build_app(with_table=True)
    table = app.router.middleware_stack
    assert isinstance(table, route_table.RouteTable)
    assert table.paths() == set()
    with TestClient(app) as client:
        response = client.post("/items", json={"name": "z"})
    assert response.status_code == 201
    assert response.json()["endpoint"] == "create_item"


async def test_the_connectors_hot_routes_are_in_the_table(tmp_path: Path) -> None:
    runtime = build_runtime(load_settings(None, data_dir=tmp_path))
    try:
        app = create_app(runtime, owns_runtime=False)
        table = app.router.middleware_stack
        assert isinstance(table, route_table.RouteTable)
        paths = table.paths()
        for hot in (
            ("POST", "/credentials/issue"),
            ("POST", "/credentials/verify"),
            ("POST", "/presentations/verify"),
            ("POST", "/v1/verifications"),
        ):
            assert hot in paths, hot
    finally:
        await runtime.aclose()
