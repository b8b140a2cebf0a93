"""The one edge layer keeps what the three middlewares it replaced did: security headers on
every response (the guard's refusals too, a route's own Cache-Control kept), request metrics by
route template, and the request guard's problem+json refusals."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from pavilion.api import route_table
from pavilion.api.middleware import API_CSP, DOCS_CSP, EdgeMiddleware
from pavilion.observability.metrics import REGISTRY


def build_app() -> FastAPI:
    app = FastAPI()

    @app.post("/things/{thing}")
    async def post_thing(thing: str, body: dict[str, int]) -> dict[str, str]:
        return {"thing": thing}

    @app.get("/cached")
    async def cached() -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"Cache-Control": "max-age=60"})

    app.add_middleware(EdgeMiddleware, max_bytes=64, max_header_bytes=4096)
    route_table.install(app.router)
    return app


def _count(route: str, status: str, method: str) -> float:
    value = REGISTRY.get_sample_value(
        "pavilion_http_request_duration_seconds_count",
        {"method": method, "route": route, "status": status},
    )
    return value or 0.0


def _assert_security_headers(headers: httpx.Headers, csp: str = API_CSP) -> None:
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("content-security-policy") == csp
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("referrer-policy") == "no-referrer"


def test_answers_refusals_and_metrics() -> None:
    before_ok = _count("/things/{thing}", "200", "POST")
    before_refused = _count("unmatched", "413", "POST")
    with TestClient(build_app()) as client:
        ok = client.post("/things/a", json={"n": 1})
        refused = client.post("/things/a", json={"n": 10**70})  # a body over 64 bytes
        cached = client.get("/cached")
        docs = client.get("/docs")
    assert ok.status_code == 200
    assert ok.json() == {"thing": "a"}
    _assert_security_headers(ok.headers)
    assert ok.headers["cache-control"] == "no-store"
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("payload-too-large")
    _assert_security_headers(refused.headers)
    assert cached.headers["cache-control"] == "max-age=60"
    assert cached.headers.get_list("cache-control") == ["max-age=60"]
    _assert_security_headers(cached.headers)
    _assert_security_headers(docs.headers, DOCS_CSP)
    assert _count("/things/{thing}", "200", "POST") == before_ok + 1
    assert _count("unmatched", "413", "POST") == before_refused + 1
