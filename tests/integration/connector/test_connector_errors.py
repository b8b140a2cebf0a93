"""Bad input gets a clear problem+json and leaves nothing half-written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connector_support import AGENT_KEY, Api, provider_body
from pavilion.audit.models import AuditLeaf
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.credentials.models import IssuedCredential
from pavilion.synth.roster import StudentRecord
from pavilion.verification.models import Verification

PROBLEM = "application/problem+json"
CONFIGURATION_KINDS = {
    "provider_registered",
    "provider_deleted",
    "residency_adequacy_set",
    "credential_default_set",
    "privacy_budget_set",
}


async def _counts(api: Api) -> tuple[int, int, int]:
    """Verifications, credentials and audit leaves of verifications (configuration changes,
    such as the provider's registration, are leaves too, and are not counted here)."""
    async with api.rt.db.transaction(api.tenant_id) as session:
        events = (await session.execute(select(AuditLeaf.event))).scalars()
        return (
            (await session.execute(select(func.count(Verification.id)))).scalar_one(),
            (await session.execute(select(func.count(IssuedCredential.id)))).scalar_one(),
            sum(1 for e in events if json.loads(e).get("kind") not in CONFIGURATION_KINDS),
        )


def _valid_request(provider_id: str, student_id: str) -> dict[str, Any]:
    return {
        "provider_id": provider_id,
        "claim": {"type": "student_status"},
        "subject": {"identifiers": {"student_id": student_id}, "residency": "EU"},
        "purpose": "eligibility check",
    }


async def test_malformed_json_is_400_and_writes_nothing(api: Api) -> None:
    response = await api.client.post(
        "/v1/verifications",
        content=b'{"claim": ',
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Malformed JSON"
    assert await _counts(api) == (0, 0, 0)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["claim"].update(type="is_wizard"), "claim.type"),
        (lambda b: b["claim"].update(threshold="eighteen"), "claim.threshold"),
        (lambda b: b["subject"].update(identifiers={}), "subject.identifiers"),
        (lambda b: b["subject"].update(residency="Europe"), "subject.residency"),
        (lambda b: b.update(format="mdoc"), "format"),
        (lambda b: b.update(surprise=True), "surprise"),
        (lambda b: b.pop("purpose"), "purpose"),
    ],
)
async def test_validation_errors_name_the_field(
    api: Api, roster: list[StudentRecord], mutate: Any, field: str
) -> None:
    provider = await api.register_provider()
    body = _valid_request(provider["id"], roster[0].student_id)
    mutate(body)
    response = await api.client.post("/v1/verifications", json=body, headers=api.auth("broker"))
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert problem["errors"][0]["field"] == field
    assert problem["detail"].startswith(field)
    assert await _counts(api) == (0, 0, 0)


async def test_claim_parameters_must_fit_the_claim_type(api: Api) -> None:
    cases = [
        ({"type": "age_over"}, "needs a threshold"),
        ({"type": "student_status", "threshold": 18}, "only for age_over"),
        ({"type": "membership"}, "needs a group"),
        ({"type": "age_over", "threshold": 18, "group": "x"}, "only for membership"),
    ]
    for claim, message in cases:
        body = _valid_request("p", "S1") | {"claim": claim}
        response = await api.client.post("/v1/verifications", json=body, headers=api.auth("broker"))
        assert response.status_code == 422
        assert message in response.json()["detail"]


async def test_huge_body_is_413(api: Api) -> None:
    huge = b'{"purpose": "' + b"x" * (api.rt.settings.max_body_bytes + 10) + b'"}'
    response = await api.client.post(
        "/v1/verifications",
        content=huge,
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_huge_chunked_body_without_length_is_413(api: Api) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65_536

    response = await api.client.post(
        "/v1/verifications",
        content=chunks(),
        headers=api.auth("broker") | {"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_unknown_provider_is_404(api: Api) -> None:
    response = await api.client.post(
        "/v1/verifications", json=_valid_request("no-such-dp", "S1"), headers=api.auth("broker")
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    no_route = _valid_request("x", "S1")
    no_route.pop("provider_id")
    response = await api.client.post("/v1/verifications", json=no_route, headers=api.auth("broker"))
    assert response.status_code == 404
    assert "no registered provider answers student_status" in response.json()["detail"]


async def test_provider_that_does_not_answer_the_claim_is_422(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider(claim_types=["age_over"])
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": roster[0].student_id}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "claim.type"


def _failing_client(handler: Any) -> ProviderClient:
    return ProviderClient(
        timeout_seconds=2,
        connect_timeout_seconds=1,
        retry=RetryPolicy(1, 0.001),
        transport=httpx.MockTransport(handler),
    )


async def test_unreachable_dp_is_503_with_retry_after_and_is_audited(
    api: Api, roster: list[StudentRecord]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api.rt.provider_client = _failing_client(refuse)
    provider = await api.register_provider()
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": roster[0].student_id}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    problem = response.json()
    assert problem["attempts"] == 2
    assert (await _counts(api)) == (1, 0, 1)
    leaf = await api.rt.audit.leaf(api.tenant_id, problem["audit_index"])
    assert leaf["event"]["status"] == "provider_unavailable"
    assert leaf["event"]["verification_id"] == problem["verification_id"]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"<html>oops</html>"),
        httpx.Response(200, json={"found": "yes"}),
        httpx.Response(200, json={"found": True}),
        httpx.Response(200, json={"found": True, "record": {"student_id": 5}}),
        httpx.Response(401, json={"title": "no"}),
        httpx.Response(404, json={"title": "wrong url"}),
    ],
)
async def test_dp_garbage_is_502_and_is_audited(
    api: Api, roster: list[StudentRecord], answer: httpx.Response
) -> None:
    api.rt.provider_client = _failing_client(lambda request: answer)
    provider = await api.register_provider()
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": roster[0].student_id}
    )
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    assert (await _counts(api)) == (1, 0, 1)
    leaf = await api.rt.audit.leaf(api.tenant_id, response.json()["audit_index"])
    assert leaf["event"]["status"] == "provider_bad_response"


async def test_schema_break_names_the_field(api: Api, roster: list[StudentRecord]) -> None:
    record: dict[str, Any] = dict(roster[0].as_json())
    record["birth_date"] = "yesterday"
    api.rt.provider_client = _failing_client(
        lambda request: httpx.Response(200, json={"found": True, "record": record})
    )
    provider = await api.register_provider()
    response = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, {"student_id": "S1"}
    )
    assert response.status_code == 502
    assert response.json()["field"] == "birth_date"


async def test_dp_5xx_is_retried_then_succeeds(api: Api, roster: list[StudentRecord]) -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        if len(calls) == 1:
            return httpx.Response(500)
        return httpx.Response(200, json={"found": True, "record": roster[0].as_json()})

    api.rt.provider_client = _failing_client(flaky)
    provider = await api.register_provider()
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": roster[0].student_id}
    )
    assert response.status_code == 201
    assert calls == [f"Bearer {AGENT_KEY}"] * 2


async def test_invalid_provider_registrations_are_422(api: Api) -> None:
    cases = [
        ({"record_schema": {"type": "nonsense"}}, "record_schema"),
        ({"endpoints": []}, "endpoints"),
        ({"claim_types": ["teleport"]}, "claim_types.0"),
        ({"auth": {"type": "api_key", "api_key": "short"}}, "auth.api_key.api_key"),
        (
            {"endpoints": [provider_body()["endpoints"][0]] * 2},
            "endpoints",
        ),
    ]
    for change, field in cases:
        response = await api.client.post(
            "/v1/providers", json=provider_body() | change, headers=api.auth("dp-admin")
        )
        assert response.status_code == 422, change
        assert response.json()["errors"][0]["field"] == field


async def test_duplicate_provider_name_is_409(api: Api) -> None:
    await api.register_provider()
    again = await api.client.post(
        "/v1/providers", json=provider_body(), headers=api.auth("dp-admin")
    )
    assert again.status_code == 409


async def test_unknown_route_and_method_are_problems(api: Api) -> None:
    missing = await api.client.get("/v1/nothing")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    wrong = await api.client.put("/healthz")
    assert wrong.status_code == 405
