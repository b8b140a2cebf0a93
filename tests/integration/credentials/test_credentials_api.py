"""The VC-API, trust chains, templates and refresh through the HTTP API (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey
from sqlalchemy import select

from connector_support import Api
from credentials_support import es256
from pavilion.audit.models import AuditLeaf
from pavilion.credentials import sd_jwt
from pavilion.credentials.issuer_models import Issuance
from pavilion.credentials.timeutil import iso
from pavilion.jose import b64url, b64url_decode
from pavilion.synth.roster import StudentRecord, pick_examples

STUDENT_VC = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}


def _token(envelope: dict[str, Any] | str) -> str:
    """The secured form: a VC 1.1 JWT comes as the JWT, the others in a VC 2.0 envelope whose
    @context is an ordered set (VC Data Model 2.0 sections 4.3 and 4.13.1)."""
    if isinstance(envelope, str):
        return envelope
    assert envelope["type"] == "EnvelopedVerifiableCredential"
    assert envelope["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    return str(envelope["id"]).split(",", 1)[1]


async def _issue(api: Api, fmt: str, **options: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/issue",
        json={"credential": STUDENT_VC, "options": {"format": fmt, **options}},
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _verify(api: Api, envelope: Any, role: str = "broker") -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/verify", json={"verifiableCredential": envelope}, headers=api.auth(role)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _checks(result: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in result["checks"]}


@pytest.mark.parametrize("fmt", ["vc2_jose", "sd_jwt_vc", "jwt_vc"])
async def test_vc_api_issues_each_format_and_verifies_it(api: Api, fmt: str) -> None:
    holder = es256()
    options = {"holderJwk": holder.public_jwk()} if fmt == "sd_jwt_vc" else {}
    issued = await _issue(api, fmt, **options)
    envelope = issued["verifiableCredential"]
    if fmt == "jwt_vc":  # VC 1.1: the compact JWT itself, typ JWT; no VC 2.0 envelope
        assert isinstance(envelope, str)
        assert jwt.get_unverified_header(envelope)["typ"] == "JWT"
    else:
        assert envelope["@context"] == ["https://www.w3.org/ns/credentials/v2"]
        media = envelope["id"].split(",", 1)[0]
        expected = {
            "vc2_jose": "data:application/vc+jwt",
            "sd_jwt_vc": "data:application/dc+sd-jwt",
        }
        assert media == expected[fmt]

    result = await _verify(api, envelope)
    assert result["verified"] is True, result
    assert result["problemDetails"] == []
    checks = _checks(result)
    assert checks["signature"] == "pass"
    assert checks["schema"] == "pass"
    assert checks["validity"] == "pass"
    assert checks["freshness"] == "pass"
    # Issued with a status-list entry from the status-list service, and checked against it.
    assert checks["status"] == "pass"
    assert result["results"]["template"] == "student_status@1"


async def test_vc2_credential_verifies_with_joserfc_and_pyjwt_against_the_jwks(api: Api) -> None:
    token = _token((await _issue(api, "vc2_jose"))["verifiableCredential"])
    jwks = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    header = jwt.get_unverified_header(token)
    assert (header["typ"], header["cty"], header["alg"]) == ("vc+jwt", "vc", "ES256")
    key = next(k for k in jwks if k["kid"] == header["kid"])
    claims = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["ES256"], options={"require": ["exp"]}
    )
    assert claims["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert claims["credentialSubject"] == {"studentStatus": {"current": True}}
    assert claims["credentialStatus"][0]["type"] == "BitstringStatusListEntry"
    assert "vc" not in claims
    joserfc_jws.deserialize_compact(token, ECKey.import_key(key), algorithms=["ES256"])


async def test_vc_api_refuses_bad_credentials_naming_the_field(api: Api) -> None:
    now = datetime.now(UTC)
    cases = [
        ({**STUDENT_VC, "issuer": "https://someone.else"}, "credential.issuer"),
        ({**STUDENT_VC, "@context": ["https://example.com/unknown"]}, "credential.@context"),
        ({**STUDENT_VC, "credentialSubject": {"studentStatus": {"current": "yes"}}}, "credential"),
        ({**STUDENT_VC, "proof": {"type": "DataIntegrityProof"}}, "credential.proof"),
        (
            {
                **STUDENT_VC,
                "validFrom": iso(now + timedelta(days=2)),
                "validUntil": iso(now + timedelta(days=1)),
            },
            "credential.validFrom",
        ),
        # Validity runs from now: never before the issuance, never already expired.
        ({**STUDENT_VC, "validFrom": "2026-02-01T00:00:00Z"}, "credential.validFrom"),
        ({**STUDENT_VC, "validUntil": iso(now - timedelta(hours=1))}, "credential.validUntil"),
    ]
    for credential, field in cases:
        response = await api.client.post(
            "/credentials/issue", json={"credential": credential}, headers=api.auth("tenant-admin")
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field


async def test_roles_decide_who_may_issue_and_verify(api: Api) -> None:
    denied = await api.client.post(
        "/credentials/issue", json={"credential": STUDENT_VC}, headers=api.auth("broker")
    )
    assert denied.status_code == 403
    envelope = (await _issue(api, "vc2_jose"))["verifiableCredential"]
    assert (await _verify(api, envelope, role="auditor"))["verified"] is True
    anonymous = await api.client.post(
        "/credentials/verify", json={"verifiableCredential": envelope}
    )
    assert anonymous.status_code == 401


async def test_a_tampered_credential_fails_with_problem_details(api: Api) -> None:
    token = _token((await _issue(api, "vc2_jose"))["verifiableCredential"])
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["credentialSubject"]["studentStatus"]["current"] = False
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    result = await _verify(api, forged)
    assert result["verified"] is False
    assert result["problemDetails"][0]["type"].endswith("#CRYPTOGRAPHIC_SECURITY_ERROR")
    assert "credential" not in result  # nothing unverified is echoed as the credential


async def test_an_envelope_whose_media_type_lies_is_refused(api: Api) -> None:
    token = _token((await _issue(api, "jwt_vc"))["verifiableCredential"])
    lying = {
        "@context": "https://www.w3.org/ns/credentials/v2",
        "type": "EnvelopedVerifiableCredential",
        "id": f"data:application/vc+jwt,{token}",
    }
    result = await _verify(api, lying)
    assert result["verified"] is False
    assert any(p["code"] == "media_type_mismatch" for p in result["problemDetails"])
    unknown = await api.client.post(
        "/credentials/verify",
        json={"verifiableCredential": {**lying, "id": f"data:text/plain,{token}"}},
        headers=api.auth("broker"),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "verifiableCredential"


async def test_revoked_credentials_fail_the_status_check(api: Api) -> None:
    envelope = (await _issue(api, "sd_jwt_vc"))["verifiableCredential"]
    token = _token(envelope)
    credential_id = None
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        rows = (
            await session.execute(select(Issuance).where(Issuance.tenant_id == api.tenant_id))
        ).scalars()
        digest = __import__("hashlib").sha256(token.encode()).hexdigest()
        credential_id = next(r.id for r in rows if r.digest == digest)
    await api.rt.status_lists.change_status(api.tenant_id, credential_id, "revoke", actor="test")
    result = await _verify(api, envelope)
    assert result["verified"] is False
    assert _checks(result)["status"] == "fail"
    assert any(p["code"] == "revoked" for p in result["problemDetails"])


async def test_trust_chain_walks_credential_accreditation_root(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider(claim_types=["student_status", "age_over"])
    admin = api.auth("tenant-admin")
    root = await api.client.post("/v1/credentials/trust/root", headers=admin)
    assert root.status_code == 201, root.text
    assert "BEGIN CERTIFICATE" in root.json()["certificate"]
    again = await api.client.post("/v1/credentials/trust/root", headers=admin)
    assert again.status_code == 409
    certified = await api.client.post(
        f"/v1/credentials/trust/providers/{provider['id']}",
        json={"claim_types": ["student_status"]},
        headers=admin,
    )
    assert certified.status_code == 201, certified.text
    assert certified.json()["claim_types"] == ["student_status"]
    outside = await api.client.post(
        f"/v1/credentials/trust/providers/{provider['id']}",
        json={"claim_types": ["membership"]},
        headers=admin,
    )
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "claim_types"

    current = pick_examples(roster).current
    response = await api.client.post(
        "/v1/verifications",
        json={
            "provider_id": provider["id"],
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": current.student_id}, "residency": "EU"},
            "purpose": "eligibility check",
            "format": "vc2_jose",
        },
        headers=api.auth("broker"),
    )
    assert response.status_code == 201, response.text
    token = response.json()["credential"]
    header = jwt.get_unverified_header(token)
    assert len(header["x5c"]) == 1
    assert header["kid"] == certified.json()["key_id"]
    result = await _verify(api, token)
    chain = next(c for c in result["checks"] if c["check"] == "chain")
    assert chain["status"] == "pass", result
    assert "accreditation for student_status" in chain["reason"]

    # age_over is not accredited: the connector signs it with its own key (no x5c).
    age = await api.client.post(
        "/v1/verifications",
        json={
            "provider_id": provider["id"],
            "claim": {"type": "age_over", "threshold": 18},
            "subject": {"identifiers": {"student_id": current.student_id}, "residency": "EU"},
            "purpose": "eligibility check",
            "format": "vc2_jose",
        },
        headers=api.auth("broker"),
    )
    assert "x5c" not in jwt.get_unverified_header(age.json()["credential"])

    read = await api.client.get(
        f"/v1/credentials/trust/providers/{provider['id']}", headers=api.auth("broker")
    )
    assert read.json()["accreditation"] == certified.json()["accreditation"]


async def test_tenant_default_format_and_holder_binding_through_verifications(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    put = await api.client.put(
        "/v1/credentials/defaults/student_status",
        json={"format": "sd_jwt_vc", "template": "student_status@1"},
        headers=api.auth("tenant-admin"),
    )
    assert put.status_code == 200, put.text
    listed = (await api.client.get("/v1/credentials/templates", headers=api.auth("broker"))).json()
    assert listed["defaults"]["student_status"] == {
        "template": "student_status@1",
        "format": "sd_jwt_vc",
    }
    assert {t["id"] for t in listed["templates"]} >= {"student_status@1", "dp_accreditation@1"}

    holder = es256()
    current = pick_examples(roster).current
    body = {
        "provider_id": provider["id"],
        "claim": {"type": "student_status"},
        "subject": {"identifiers": {"student_id": current.student_id}, "residency": "EU"},
        "purpose": "eligibility check",
        "holder_jwk": holder.public_jwk(),
    }
    response = await api.client.post("/v1/verifications", json=body, headers=api.auth("broker"))
    assert response.status_code == 201, response.text
    assert response.json()["credential_format"] == "sd_jwt_vc"
    credential = response.json()["credential"]
    assert credential.endswith("~")

    presentation = await sd_jwt.present(
        credential,
        holder=holder,
        audience="https://verifier.example",
        nonce="n-123",
        issued_at=datetime.now(UTC),
    )
    envelope = {
        "@context": "https://www.w3.org/ns/credentials/v2",
        "type": "EnvelopedVerifiablePresentation",
        "id": f"data:application/dc+sd-jwt,{presentation}",
    }
    ok = await api.client.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": envelope,
            "options": {"challenge": "n-123", "domain": "https://verifier.example"},
        },
        headers=api.auth("broker"),
    )
    assert ok.status_code == 200, ok.text
    result = ok.json()
    assert {c["check"]: c["status"] for c in result["checks"]}["key_binding"] == "pass"
    assert result["results"]["challenge"] == {"valid": True, "input": "n-123"}
    # The fixture DP vouched on 2026-01-01: older than 30 days, so the data is reported stale.
    freshness = next(c for c in result["checks"] if c["check"] == "freshness")
    assert (freshness["status"], freshness["code"]) == ("fail", "stale")
    assert result["credentials"][0]["student_status"] == {"current": True}

    replay = await api.client.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": envelope,
            "options": {"challenge": "another-nonce", "domain": "https://verifier.example"},
        },
        headers=api.auth("broker"),
    )
    assert any(p["code"] == "kb_wrong_nonce" for p in replay.json()["problemDetails"])
    missing = await api.client.post(
        "/presentations/verify",
        json={"verifiablePresentation": envelope, "options": {"domain": "x"}},
        headers=api.auth("broker"),
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "options.challenge"

    wrong_holder_format = await api.client.post(
        "/v1/verifications",
        json={**body, "format": "jwt_vc"},
        headers=api.auth("broker"),
    )
    assert wrong_holder_format.status_code == 422
    assert wrong_holder_format.json()["errors"][0]["field"] == "holder_jwk"
    private = await api.client.post(
        "/v1/verifications",
        json={**body, "holder_jwk": {**holder.public_jwk(), "d": "AAAA"}},
        headers=api.auth("broker"),
    )
    assert private.status_code == 422


async def test_proofless_presentation_verifies_each_credential(api: Api) -> None:
    first = (await _issue(api, "vc2_jose"))["verifiableCredential"]
    second = (await _issue(api, "sd_jwt_vc"))["verifiableCredential"]
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [first, second],
    }
    response = await api.client.post(
        "/presentations/verify", json={"presentation": presentation}, headers=api.auth("broker")
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["verified"] is True
    assert len(result["credentialResults"]) == 2
    assert result["results"]["holder"]["valid"] is False


async def test_refresh_reverifies_the_same_subject_and_links_the_credentials(
    api: Api, roster: list[StudentRecord], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = await api.register_provider()
    current = pick_examples(roster).current
    first = await api.client.post(
        "/v1/verifications",
        json={
            "provider_id": provider["id"],
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": current.student_id}, "residency": "EU"},
            "purpose": "eligibility check",
            "format": "vc2_jose",
        },
        headers=api.auth("broker"),
    )
    assert first.status_code == 201, first.text
    original = first.json()
    refreshed = await api.client.post(
        f"/v1/verifications/{original['id']}/refresh",
        json={"identifiers": {"student_id": current.student_id}},
        headers=api.auth("broker"),
    )
    assert refreshed.status_code == 201, refreshed.text
    body = refreshed.json()
    assert body["refreshes"] == original["id"]
    assert body["id"] != original["id"]
    assert body["credential"] != original["credential"]
    assert body["credential_format"] == "vc2_jose"
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        rows = (
            await session.execute(select(Issuance).where(Issuance.tenant_id == api.tenant_id))
        ).scalars()
        links = {r.verification_id: r.refreshes for r in rows}
        leaves = (
            await session.execute(
                select(AuditLeaf.event).where(AuditLeaf.tenant_id == api.tenant_id)
            )
        ).scalars()
        audit_text = "\n".join(leaves)
    assert links[body["id"]] == original["id"]

    someone_else = await api.client.post(
        f"/v1/verifications/{original['id']}/refresh",
        json={"identifiers": {"student_id": "S0000000"}},
        headers=api.auth("broker"),
    )
    assert someone_else.status_code == 422
    assert someone_else.json()["errors"][0]["field"] == "identifiers"
    missing = await api.client.post(
        "/v1/verifications/00000000-0000-0000-0000-000000000000/refresh",
        json={"identifiers": {"student_id": current.student_id}},
        headers=api.auth("broker"),
    )
    assert missing.status_code == 404
    # The identifiers travel in the request only: never in logs or the audit log.
    assert current.student_id not in caplog.text
    assert current.student_id not in audit_text


async def test_presentation_requests_that_cannot_be_verified_say_why(api: Api) -> None:
    broker = api.auth("broker")
    envelope = (await _issue(api, "vc2_jose"))["verifiableCredential"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "verifiablePresentation"),
        (
            {"presentation": {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": "X"}},
            "presentation.type",
        ),
        (
            {
                "presentation": {
                    "@context": ["https://www.w3.org/ns/credentials/v2"],
                    "type": "VerifiablePresentation",
                    "proof": {"type": "DataIntegrityProof"},
                }
            },
            "presentation.proof",
        ),
        (
            {
                "presentation": {
                    "@context": ["https://www.w3.org/ns/credentials/v2"],
                    "type": "VerifiablePresentation",
                    "holderName": "x",
                }
            },
            "presentation",
        ),
        (
            {
                "presentation": {
                    "@context": ["https://www.w3.org/ns/credentials/v2"],
                    "type": "VerifiablePresentation",
                }
            },
            "presentation.verifiableCredential",
        ),
    ]
    for body, field in cases:
        response = await api.client.post("/presentations/verify", json=body, headers=broker)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    # A presentation object under verifiablePresentation (proofless) is echoed back.
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": envelope,
    }
    result = await api.client.post(
        "/presentations/verify", json={"verifiablePresentation": presentation}, headers=broker
    )
    assert result.json()["verified"] is True
    assert result.json()["verifiablePresentation"] == presentation


async def test_sd_jwt_presentations_can_be_returned_and_roots_read(
    api: Api, roster: list[StudentRecord]
) -> None:
    missing_root = await api.client.get("/v1/credentials/trust/root", headers=api.auth("broker"))
    assert missing_root.status_code == 404
    await api.client.post(
        "/v1/credentials/trust/root",
        json={"common_name": "Tenant A root", "valid_days": 30},
        headers=api.auth("tenant-admin"),
    )
    root = await api.client.get("/v1/credentials/trust/root", headers=api.auth("auditor"))
    assert root.status_code == 200
    assert root.json()["backend"] == "software"
    holder = es256()
    issued = await _issue(api, "sd_jwt_vc", holderJwk=holder.public_jwk())
    token = _token(issued["verifiableCredential"])
    presentation = await sd_jwt.present(
        token, holder=holder, audience="aud", nonce="n", issued_at=datetime.now(UTC)
    )
    response = await api.client.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": presentation,
            "options": {"challenge": "n", "domain": "aud", "returnPresentation": True},
        },
        headers=api.auth("broker"),
    )
    body = response.json()
    assert body["verified"] is True, body
    assert body["verifiablePresentation"] == presentation


async def test_refresh_needs_an_issued_credential(api: Api, roster: list[StudentRecord]) -> None:
    provider = await api.register_provider()
    former = pick_examples(roster).former
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": former.student_id}
    )
    assert response.json()["decision"] is False
    refused = await api.client.post(
        f"/v1/verifications/{response.json()['id']}/refresh",
        json={"identifiers": {"student_id": former.student_id}},
        headers=api.auth("broker"),
    )
    assert refused.status_code == 409
    bad_key = await api.client.post(
        f"/v1/verifications/{response.json()['id']}/refresh",
        json={"identifiers": {"student_id": former.student_id}, "holder_jwk": {"kty": "RSA"}},
        headers=api.auth("broker"),
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "holder_jwk"
