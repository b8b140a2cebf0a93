"""The VC-API against the specifications' own text: envelopes, validity from the issuance,
VC 1.1 JWT registered claims, and presentations (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from connector_support import Api
from pavilion.credentials.timeutil import parse_date_time_stamp

SUBJECT_ID = "did:example:ebfeb1f712ebc6f1c276e12ec21"
STUDENT_VC: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"id": SUBJECT_ID, "studentStatus": {"current": True}},
}


async def issue(api: Api, fmt: str, credential: dict[str, Any] | None = None) -> Any:
    response = await api.client.post(
        "/credentials/issue",
        json={"credential": credential or STUDENT_VC, "options": {"format": fmt}},
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 201, response.text
    return response.json()["verifiableCredential"]


async def verify(api: Api, secured: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/verify", json={"verifiableCredential": secured}, headers=api.auth("broker")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_envelopes_carry_an_ordered_set_context(api: Api) -> None:
    """VC Data Model 2.0 4.3: "The value of the @context property MUST be an ordered set
    where the first item is a URL with the value https://www.w3.org/ns/credentials/v2"."""
    for fmt in ("vc2_jose", "sd_jwt_vc"):
        envelope = await issue(api, fmt)
        assert envelope["@context"] == ["https://www.w3.org/ns/credentials/v2"]
        assert envelope["type"] == "EnvelopedVerifiableCredential"
        assert envelope["id"].startswith("data:application/")
        assert (await verify(api, envelope))["verified"] is True


async def test_validity_runs_from_the_issuance(api: Api) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    envelope = await issue(api, "vc2_jose")
    claims = jwt.decode(envelope["id"].split(",", 1)[1], options={"verify_signature": False})
    valid_from = parse_date_time_stamp(claims["validFrom"], "validFrom")
    valid_until = parse_date_time_stamp(claims["validUntil"], "validUntil")
    assert before <= valid_from <= datetime.now(UTC)
    assert valid_until - valid_from == timedelta(days=30)  # student_status@1's maximum age
    assert claims["evidence"][0]["asOf"] == claims["validFrom"]
    past = await api.client.post(
        "/credentials/issue",
        json={"credential": {**STUDENT_VC, "validFrom": "2020-01-01T00:00:00Z"}},
        headers=api.auth("tenant-admin"),
    )
    assert past.status_code == 422
    assert past.json()["errors"][0]["field"] == "credential.validFrom"


async def test_a_vc11_jwt_is_the_jwt_itself_with_sub_for_the_subject(api: Api) -> None:
    """VC Data Model 1.1 6.3.1: sub MUST represent the id of the credential subject; a VC 1.1
    JWT is no VC 2.0 credential, so it comes back as the JWT, not in a VC 2.0 envelope."""
    token = await issue(api, "jwt_vc")
    assert isinstance(token, str)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["typ"] == "JWT"
    assert claims["sub"] == SUBJECT_ID == claims["vc"]["credentialSubject"]["id"]
    assert (await verify(api, token))["verified"] is True
    wrapped = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": "EnvelopedVerifiableCredential",
        "id": f"data:application/jwt,{token}",
    }
    refused = await api.client.post(
        "/credentials/verify", json={"verifiableCredential": wrapped}, headers=api.auth("broker")
    )
    assert refused.status_code == 422
    assert "compact JWT" in refused.json()["detail"]
