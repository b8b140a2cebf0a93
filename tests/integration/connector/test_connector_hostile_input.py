"""Hostile input is a 4xx problem, never a 5xx (issue 14, items 1 to 3): integers past their
column's range, NUL and lone surrogates in text, documents nested ten thousand deep, bodies the
framework cannot read, oversized headers; and the database's own failures, classified."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from connector_support import Api
from pavilion.api import problems
from pavilion.api.app import create_app
from pavilion.errors import StorageRefusedValue, StorageUnavailable
from pavilion.parsing import MAX_NESTING, MAX_YAML_NODES
from pavilion.runtime import Runtime
from pavilion.serving import BackgroundServer

PROBLEM = "application/problem+json"
TOO_BIG = [2**31, 2**63, 10**25]


def _assert_problem(response: httpx.Response, status: int, field: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    if field is not None:
        assert field in [e["field"] for e in body["errors"]]
    return body


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/audit/leaves?start={v}", "start"),
        ("/v1/audit/proofs/inclusion?index={v}", "index"),
        ("/v1/audit/proofs/inclusion?index=0&tree_size={v}", "tree_size"),
        ("/v1/audit/proofs/consistency?first={v}&second=1", "first"),
        ("/v1/anoncreds/registries/r-1/deltas?since={v}0000", "since"),
        ("/v1/providers/p-1/mappings/{v}", "version"),
        ("/v1/providers/p-1/rosters/b-1/quarantine?after_row={v}", "after_row"),
    ],
)
async def test_integers_past_their_range_are_422_on_every_parameter(
    api: Api, path: str, field: str, value: int
) -> None:
    role = {"audit": "auditor", "anoncreds": "broker"}.get(path.split("/")[2], "dp-admin")
    response = await api.client.get(path.format(v=value), headers=api.auth(role))
    _assert_problem(response, 422, field)


async def test_an_out_of_range_chunk_number_and_max_age_are_422(api: Api) -> None:
    chunk = await api.client.put(
        f"/v1/privacy/tag-sets/u-1/chunks/{2**70}",
        content=b"x",
        headers=api.auth("dp-admin") | {"content-type": "application/octet-stream"},
    )
    _assert_problem(chunk, 422, "seq")
    verify = await api.client.post(
        "/credentials/verify",
        json={"verifiableCredential": "a.b.c", "options": {"maxAge": 967193743961091004484812800}},
        headers=api.auth("tenant-admin"),
    )
    _assert_problem(verify, 422, "options.maxAge")


@pytest.mark.parametrize(
    ("value", "words"),
    [("Uni\u0000versity", "NUL"), ("Uni\ud800versity", "surrogate")],
)
async def test_nul_and_lone_surrogates_in_json_text_are_422_and_store_nothing(
    api: Api, value: str, words: str
) -> None:
    body = {
        "name": value,
        "claim_types": ["student_status"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": "http://a.test"}],
        "auth": {"type": "api_key", "api_key": "k" * 32},
        "record_schema": {"type": "object"},
    }
    # json.dumps writes both as \u escapes, as any client would.
    response = await api.client.post(
        "/v1/providers",
        content=json.dumps(body).encode(),
        headers=api.auth("dp-admin") | {"content-type": "application/json"},
    )
    problem = _assert_problem(response, 422, "body")
    assert words in problem["detail"]
    listed = await api.client.get("/v1/providers", headers=api.auth("dp-admin"))
    assert listed.json()["items"] == []


async def test_a_nul_in_a_key_is_refused_too(api: Api) -> None:
    response = await api.client.post(
        "/v1/verifications",
        content=b'{"claim": {"type\\u0000": "x"}}',
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    assert "NUL" in _assert_problem(response, 422, "body")["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/providers/p%00q", "path"), ("/v1/providers?after=a%00b", "query")],
)
async def test_nul_in_the_path_or_query_is_422(api: Api, path: str, field: str) -> None:
    response = await api.client.get(path, headers=api.auth("dp-admin"))
    assert "NUL" in _assert_problem(response, 422, field)["detail"]


@pytest.mark.parametrize("opener", [b'{"a":', b"["])
async def test_a_json_body_nested_ten_thousand_deep_is_422_naming_the_limit(
    api: Api, opener: bytes
) -> None:
    closer = b"}" if opener.startswith(b"{") else b"]"
    body = opener * 10_000 + b"1" + closer * 10_000
    response = await api.client.post(
        "/v1/verifications",
        content=body,
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    problem = _assert_problem(response, 422, "body")
    assert f"deeper than {MAX_NESTING} levels" in problem["detail"]


async def test_a_json_body_at_the_limit_reaches_the_route(api: Api) -> None:
    # MAX_NESTING levels pass the guard; the route then answers the body's shape (422 by field).
    deep: Any = "x"
    for _ in range(MAX_NESTING - 1):
        deep = [deep]
    response = await api.client.post(
        "/v1/verifications", json={"claim": deep}, headers=api.auth("broker")
    )
    problem = _assert_problem(response, 422)
    assert "levels" not in problem["detail"]


async def test_a_yaml_profile_nested_ten_thousand_deep_is_422_naming_the_limit(api: Api) -> None:
    provider = await api.register_provider()
    response = await api.client.post(
        f"/v1/providers/{provider['id']}/mappings",
        content=b"schema: " + b"[" * 10_000 + b"]" * 10_000,
        headers=api.auth("dp-admin") | {"content-type": "application/yaml"},
    )
    problem = _assert_problem(response, 422)
    assert f"deeper than {MAX_NESTING} levels" in problem["detail"]


async def test_a_yaml_profile_of_billion_laughs_is_422_not_a_billion_nodes(api: Api) -> None:
    provider = await api.register_provider()
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 9)]
    response = await api.client.post(
        f"/v1/providers/{provider['id']}/mappings",
        content=("schema: {}\n" + "\n".join(lines)).encode(),
        headers=api.auth("dp-admin") | {"content-type": "application/yaml"},
    )
    problem = _assert_problem(response, 422)
    assert f"more than {MAX_YAML_NODES} nodes" in problem["detail"]


async def test_a_body_the_framework_cannot_read_is_the_malformed_json_problem(api: Api) -> None:
    response = await api.client.post(
        "/v1/verifications",
        content=b"\xff\xfe{}",  # not UTF-8: not even JSON's encoding
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    problem = _assert_problem(response, 400)
    assert problem["type"].endswith("/malformed-json")
    assert problem["title"] == "Malformed JSON"


async def test_headers_over_the_limit_are_431(api: Api) -> None:
    limit = api.rt.settings.max_header_bytes
    response = await api.client.get(
        "/v1/providers", headers=api.auth("dp-admin") | {"x-filler": "a" * limit}
    )
    problem = _assert_problem(response, 431)
    assert str(limit) in problem["detail"]
    fine = await api.client.get(
        "/v1/providers", headers=api.auth("dp-admin") | {"x-filler": "a" * 1000}
    )
    assert fine.status_code == 200


def test_a_one_megabyte_header_is_431_from_the_running_server(runtime: Runtime) -> None:
    with BackgroundServer(create_app(runtime, owns_runtime=False), lifespan="off") as server:
        response = httpx.get(server.url + "/healthz", headers={"x-filler": "a" * 1_048_576})
        assert response.status_code == 431
        assert response.headers["content-type"] == PROBLEM
        assert "server" not in response.headers


async def test_an_unreachable_database_is_503_with_retry_after_and_logged(api: Api) -> None:
    dead = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    api.rt.db._sessions = async_sessionmaker(dead)  # type: ignore[attr-defined]
    api.rt.db._read_sessions = async_sessionmaker(dead)  # type: ignore[attr-defined]
    try:
        with structlog.testing.capture_logs() as events:
            response = await api.client.get("/v1/providers", headers=api.auth("dp-admin"))
    finally:
        await dead.dispose()
    problem = _assert_problem(response, 503)
    assert problem["type"].endswith("/storage-unavailable")
    assert int(response.headers["retry-after"]) > 0
    logged = [e for e in events if e["event"] == "server error"]
    assert logged
    assert logged[0]["status"] == 503
    assert logged[0]["error"] == "StorageUnavailable"
    assert logged[0]["cause"] == "ConnectionRefusedError"
    assert logged[0]["route"] == "/v1/providers"


async def test_values_the_database_cannot_hold_are_refused_values(runtime: Runtime) -> None:
    with pytest.raises(StorageRefusedValue):
        async with runtime.db.transaction(None) as session:
            await session.execute(text("SELECT :x"), {"x": 2**63})
    if runtime.db.is_postgres:  # SQLite keeps a NUL in text; PostgreSQL refuses it
        with pytest.raises(StorageRefusedValue):
            async with runtime.db.transaction(None) as session:
                await session.execute(text("SELECT CAST(:x AS text)"), {"x": "a\x00b"})


async def test_a_constraint_no_caller_answers_is_409_and_logged() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        with structlog.testing.capture_logs() as events:
            response = await client.get("/boom")
    _assert_problem(response, 409)
    assert any(e["event"] == "constraint refused a write" for e in events)


async def test_every_unexpected_500_is_logged_with_its_cause_and_place() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        try:
            {}["secret-key-ada@example.org"]
        except KeyError as exc:
            raise RuntimeError("holds ada@example.org") from exc

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        with structlog.testing.capture_logs() as events:
            response = await client.get("/boom")
    _assert_problem(response, 500)
    logged = next(e for e in events if e["event"] == "server error")
    assert logged["error"] == "RuntimeError"
    assert logged["cause"] == "KeyError"
    assert logged["raised_at"].startswith("test_connector_hostile_input.py:")
    assert "ada@example.org" not in repr(logged)


def test_storage_unavailable_says_when_to_retry() -> None:
    assert StorageUnavailable("x").retry_after_s > 0


async def test_a_deprecated_alias_takes_a_non_latin_id(api: Api) -> None:
    # The alias's Link header is built before the route runs; a header is Latin-1 only.
    response = await api.client.get("/v1/providers/日本/rosters", headers=api.auth("dp-admin"))
    _assert_problem(response, 404)


async def test_the_successor_link_percent_encodes_the_path_parameters() -> None:
    from starlette.requests import Request
    from starlette.responses import Response

    from pavilion.api.deprecation import _mark

    request = Request({"type": "http", "path_params": {"provider_id": "日本"}, "headers": []})
    response = Response()
    await _mark("/v1/providers/{provider_id}/roster-uploads")(request, response)
    assert response.headers["link"] == (
        '</v1/providers/%E6%97%A5%E6%9C%AC/roster-uploads>; rel="successor-version"'
    )
