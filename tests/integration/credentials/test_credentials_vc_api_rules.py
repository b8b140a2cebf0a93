"""The VC-API against the specifications' own text: envelopes, validity from the issuance,
VC 1.1 JWT registered claims, and presentations (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from connector_support import Api
from pavilion.credentials.timeutil import parse_date_time_stamp
from presentation_support import Holder, envelope_presentation

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


# -- presentations -----------------------------------------------------------------------------

DOMAIN = "https://verifier.example"
CHALLENGE = "n-0S6_WzA2Mj"


async def present(api: Api, presentation: Any, **options: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": presentation,
            "options": {"challenge": CHALLENGE, "domain": DOMAIN, **options},
        },
        headers=api.auth("broker"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _issue_for(api: Api, holder: Holder, fmt: str) -> Any:
    subject = {"id": holder.did, "studentStatus": {"current": True}}
    response = await api.client.post(
        "/credentials/issue",
        json={
            "credential": {**STUDENT_VC, "credentialSubject": subject},
            "options": {"format": fmt, "holderJwk": holder.public_jwk()}
            if fmt == "sd_jwt_vc"
            else {"format": fmt},
        },
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 201, response.text
    return response.json()["verifiableCredential"]


async def test_an_enveloped_vp_jwt_verifies_with_its_holders_credentials(api: Api) -> None:
    """VC-JOSE-COSE: a presentation secured with JOSE (typ vp+jwt) carrying enveloped
    credentials, signed by the holder's key, for this verifier's domain and challenge."""
    holder = Holder.ed25519()
    credentials = [
        await _issue_for(api, holder, "vc2_jose"),
        await _issue_for(api, holder, "sd_jwt_vc"),
    ]
    token = holder.present(credentials, audience=DOMAIN, nonce=CHALLENGE)
    result = await present(api, envelope_presentation(token), returnPresentation=True)
    assert result["verified"] is True, result
    assert result["problemDetails"] == []
    assert result["results"]["holder"] == {"valid": True, "input": holder.did}
    assert result["results"]["challenge"] == {"valid": True, "input": CHALLENGE}
    assert result["results"]["domain"] == {"valid": True, "input": DOMAIN}
    assert [c["verified"] for c in result["credentialResults"]] == [True, True]
    bindings = [
        next(c for c in r["checks"] if c["check"] == "key_binding")["status"]
        for r in result["credentialResults"]
    ]
    assert bindings == ["pass", "pass"]
    assert {c["check"]: c["status"] for c in result["checks"]}["signature"] == "pass"
    assert result["verifiablePresentation"]["type"] == "EnvelopedVerifiablePresentation"
    compact = await present(api, token)  # the compact JWS itself, recognised by its typ
    assert compact["verified"] is True


async def test_a_vp_jwt_fails_for_a_stolen_credential_or_a_replay(api: Api) -> None:
    holder, thief = Holder.p256(), Holder.p256()
    stolen = await _issue_for(api, holder, "vc2_jose")
    theft = await present(api, thief.present([stolen], audience=DOMAIN, nonce=CHALLENGE))
    assert theft["verified"] is False
    assert theft["results"]["holder"]["valid"] is False
    assert any(p["code"] == "holder_not_subject" for p in theft["problemDetails"])
    replay = await present(api, holder.present([stolen], audience=DOMAIN, nonce="an-old-one"))
    assert replay["verified"] is False
    assert any(p["code"] == "vp_wrong_nonce" for p in replay["problemDetails"])
    assert "credentialResults" not in replay or replay["credentialResults"] == []


async def test_a_secured_presentation_needs_a_challenge_and_a_domain(api: Api) -> None:
    holder = Holder.ed25519()
    response = await api.client.post(
        "/presentations/verify",
        json={"verifiablePresentation": holder.present([]), "options": {"domain": DOMAIN}},
        headers=api.auth("broker"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "options.challenge"


async def test_proofless_presentations_keep_the_data_model_rules(api: Api) -> None:
    """VC Data Model 2.0 4.13: id a URL, a holder object with an id, type including
    VerifiablePresentation, each verifiableCredential an object."""
    envelope = await issue(api, "vc2_jose")
    base = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
    }
    cases = [
        ({**base, "id": "not a url", "verifiableCredential": [envelope]}, "presentation.id"),
        (
            {**base, "holder": {"name": "x"}, "verifiableCredential": [envelope]},
            "presentation.holder.id",
        ),
        ({**base, "holder": 7, "verifiableCredential": [envelope]}, "presentation.holder"),
        (
            {**base, "type": ["Presentation"], "verifiableCredential": [envelope]},
            "presentation.type",
        ),
        ({**base, "verifiableCredential": ["eyJ.a.b"]}, "presentation.verifiableCredential[0]"),
    ]
    for presentation, field in cases:
        response = await api.client.post(
            "/presentations/verify", json={"presentation": presentation}, headers=api.auth("broker")
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["errors"][0]["field"] == field
        assert "VC Data Model 2.0, section 4." in problem["detail"]
    ok = await api.client.post(
        "/presentations/verify",
        json={
            "presentation": {
                **base,
                "holder": {"id": "did:example:holder"},
                "verifiableCredential": [envelope],
            }
        },
        headers=api.auth("broker"),
    )
    assert ok.status_code == 200
    assert ok.json()["verified"] is True
