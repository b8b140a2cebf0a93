"""The lookup API as the connector uses it: auth, answers, and problem+json errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dpagent_support import AS_OF, DP_KEY
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA, StudentRecord

PROBLEM = "application/problem+json"


def agent_client(
    app: FastAPI, headers: dict[str, str] | dict[bytes, bytes] | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agent.test", headers=headers
    )


def lookup_body(**identifiers: str) -> dict[str, Any]:
    return {"identifiers": identifiers}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://pavilion.example/problems/{code}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_healthz_needs_no_key_and_counts_records(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    async with agent_client(make_app()) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "records": len(dp_records)}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-key-wrong-key-wrong"}, id="wrong bearer"),
        pytest.param({"X-API-Key": "wrong-key-wrong-key-wrong"}, id="wrong x-api-key"),
        pytest.param({"Authorization": f"Basic {DP_KEY}"}, id="other scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty bearer"),
        pytest.param({"X-API-Key": DP_KEY[:-1]}, id="prefix of the key"),
        pytest.param({b"X-API-Key": "kéy-ключ".encode()}, id="non-ascii bytes"),
    ],
)
async def test_lookups_without_the_right_key_get_401(
    make_app: Callable[..., FastAPI],
    dp_records: list[StudentRecord],
    headers: dict[str, str] | dict[bytes, bytes],
) -> None:
    async with agent_client(make_app(), headers) as http:
        response = await http.post(
            "/v1/lookup", json=lookup_body(student_id=dp_records[0].student_id)
        )
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert dp_records[0].student_id not in response.text
    assert "record" not in body


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": f"Bearer {DP_KEY}"}, id="bearer"),
        pytest.param({"Authorization": f"bearer  {DP_KEY} "}, id="bearer, sloppy spacing"),
        pytest.param({"X-API-Key": DP_KEY}, id="x-api-key"),
    ],
)
async def test_both_header_forms_authenticate(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord], headers: dict[str, str]
) -> None:
    async with agent_client(make_app(), headers) as http:
        response = await http.post(
            "/v1/lookup", json=lookup_body(student_id=dp_records[0].student_id)
        )
    assert response.status_code == 200
    assert response.json()["found"] is True


async def test_auth_is_checked_before_the_body_is_read(make_app: Callable[..., FastAPI]) -> None:
    """An unauthenticated caller learns nothing, not even whether its JSON parses."""
    async with agent_client(make_app()) as http:
        response = await http.post(
            "/v1/lookup", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert_problem(response, 401, "unauthenticated")


async def test_openapi_document_needs_the_key_and_documents_problems(
    make_app: Callable[..., FastAPI],
) -> None:
    async with agent_client(make_app()) as http:
        assert (await http.get("/openapi.json")).status_code == 401
        response = await http.get("/openapi.json", headers={"X-API-Key": DP_KEY})
        again = await http.get("/openapi.json", headers={"X-API-Key": DP_KEY})
    lookup = response.json()["paths"]["/v1/lookup"]["post"]
    assert set(lookup["requestBody"]["content"]) == {"application/json"}
    for status in ("401", "422", "500"):
        assert set(lookup["responses"][status]["content"]) == {PROBLEM}
    assert set(lookup["responses"]["200"]["content"]) == {"application/json"}
    assert again.json() == response.json()


async def test_a_found_subject_comes_with_the_full_record_and_as_of(
    client: httpx.AsyncClient, dp_records: list[StudentRecord]
) -> None:
    subject = dp_records[0]
    response = await client.post("/v1/lookup", json=lookup_body(student_id=subject.student_id))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "found": True,
        "record": dict(subject.as_json()),
        "as_of": AS_OF.isoformat().replace("+00:00", "Z"),
    }
    Draft202012Validator(
        ROSTER_RECORD_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).validate(body["record"])


async def test_lookup_by_email_ignores_case(
    client: httpx.AsyncClient, dp_records: list[StudentRecord]
) -> None:
    subject = dp_records[1]
    response = await client.post(
        "/v1/lookup", json=lookup_body(email=f"  {subject.email.upper()} ")
    )
    assert response.json()["record"]["student_id"] == subject.student_id


async def test_identifiers_of_two_different_people_find_nobody(
    client: httpx.AsyncClient, dp_records: list[StudentRecord]
) -> None:
    first, second = dp_records[0], dp_records[1]
    same = await client.post(
        "/v1/lookup", json=lookup_body(student_id=first.student_id, email=first.email)
    )
    mixed = await client.post(
        "/v1/lookup", json=lookup_body(student_id=first.student_id, email=second.email)
    )
    assert same.json()["found"] is True
    assert mixed.json() == {"found": False}


async def test_an_unknown_subject_is_a_plain_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/lookup", json=lookup_body(student_id="S0000000"))
    assert response.status_code == 200
    assert response.json() == {"found": False}


async def test_lookups_are_idempotent(
    client: httpx.AsyncClient, dp_records: list[StudentRecord]
) -> None:
    body = lookup_body(email=dp_records[2].email)
    first = await client.post("/v1/lookup", json=body)
    second = await client.post("/v1/lookup", json=body)
    assert first.content == second.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"identifiers": {}}, "identifiers", id="no identifiers"),
        pytest.param({}, "identifiers", id="identifiers missing"),
        pytest.param({"identifiers": {"passport": "X1"}}, "identifiers.passport", id="unknown"),
        pytest.param({"identifiers": {"student_id": ""}}, "identifiers.student_id", id="empty"),
        pytest.param({"identifiers": {"student_id": "  "}}, "identifiers.student_id", id="blank"),
        pytest.param({"identifiers": {"email": 42}}, "identifiers.email", id="not a string"),
        pytest.param(
            {"identifiers": {"student_id": "S1234567"}, "purpose": "x"}, "purpose", id="extra"
        ),
        pytest.param(["S1234567"], "body", id="not an object"),
    ],
)
async def test_malformed_lookups_get_422_naming_the_field(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await client.post("/v1/lookup", json=body)
    problem = assert_problem(response, 422, "invalid-request")
    assert field in [error["field"] for error in problem["errors"]]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"identifiers": {"student_id": "S1234567"', "application/json"),
        (b"student_id=S1234567", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
async def test_a_body_that_is_not_json_gets_422(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/v1/lookup", content=content, headers={"content-type": content_type}
    )
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"][0]["field"] == "body"


async def test_422_answers_do_not_repeat_the_identifiers(client: httpx.AsyncClient) -> None:
    body = {"identifiers": {"student_id": "S7777777", "phone": "+44 20 7946 0000"}}
    response = await client.post("/v1/lookup", json=body)
    assert_problem(response, 422, "invalid-request")
    assert "S7777777" not in response.text
    assert "7946" not in response.text


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    wrong_method = await client.get("/v1/lookup")
    assert_problem(wrong_method, 405, "method-not-allowed")
    assert wrong_method.headers["allow"] == "POST"


async def test_insecure_mode_serves_without_a_key(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    async with agent_client(make_app(insecure=True)) as http:
        response = await http.post(
            "/v1/lookup", json=lookup_body(student_id=dp_records[0].student_id)
        )
    assert response.json()["found"] is True


class BrokenIndex(RecordIndex):
    def find(self, identifiers: Any) -> StudentRecord | None:
        raise RuntimeError("disk on fire")


async def test_an_unexpected_failure_is_a_500_problem_without_internals() -> None:
    app = create_agent_app(AgentConfig(insecure_no_auth=True), BrokenIndex([], as_of=AS_OF))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as http:
        response = await http.post("/v1/lookup", json=lookup_body(student_id="S1234567"))
    assert_problem(response, 500, "internal")
    assert "disk on fire" not in response.text


async def test_two_agents_in_one_process_keep_their_own_records(
    dp_records: list[StudentRecord],
) -> None:
    config = AgentConfig(insecure_no_auth=True)
    first = create_agent_app(config, RecordIndex(dp_records[:1], as_of=AS_OF))
    second = create_agent_app(config, RecordIndex(dp_records[1:3], as_of=AS_OF))
    async with agent_client(first) as one, agent_client(second) as two:
        assert (await one.get("/healthz")).json()["records"] == 1
        assert (await two.get("/healthz")).json()["records"] == 2
        body = lookup_body(student_id=dp_records[0].student_id)
        assert (await one.post("/v1/lookup", json=body)).json()["found"] is True
        assert (await two.post("/v1/lookup", json=body)).json() == {"found": False}
