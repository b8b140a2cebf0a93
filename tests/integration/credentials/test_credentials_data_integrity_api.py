"""Embedded Data Integrity proofs through the VC-API: issued, verified independently, verified
by /credentials/verify and in presentations, refused with reasons (SQLite, PostgreSQL).

Written from VC Data Integrity 1.0 (section 4: "the verification method ... MUST be
associated with the controller", a proof covering the whole document), the cryptosuite
specifications (eddsa-rdfc-2022, ecdsa-rdfc-2019, section 3.3) and VC Data Model 2.0
(section 4.7: "issuer ... MUST be either a URL or an object containing an id property"). Every
issued proof is re-checked by ``di_support`` (pyld, PyJWT and pyca, not the connector's code)
with the key the connector publishes in its JWKS.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from sqlalchemy import select

from connector_support import Api
from credentials_support import eddsa, es256
from di_support import key_of_jwk, key_of_multikey, sign_independently, verify_independently
from pavilion.audit.models import AuditLeaf
from pavilion.credentials import jsonld
from pavilion.credentials.data_integrity import multikey, proofs
from pavilion.credentials.issuer_models import Issuance
from presentation_support import Holder

STUDENT_VC: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"id": "did:example:ebfeb1f712eb", "studentStatus": {"current": True}},
}
SUITES = {"eddsa-rdfc-2022": "EdDSA", "ecdsa-rdfc-2019": "ES256"}


async def issue(api: Api, **options: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/issue",
        json={"credential": options.pop("credential", STUDENT_VC), "options": options},
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 201, response.text
    secured: dict[str, Any] = response.json()["verifiableCredential"]
    return secured


async def refused(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/issue", json=body, headers=api.auth("tenant-admin")
    )
    assert response.status_code == 422, response.text
    problem: dict[str, Any] = response.json()
    return problem


async def verify(api: Api, secured: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/verify", json={"verifiableCredential": secured}, headers=api.auth("broker")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def checks(result: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["check"]: (c["status"], c.get("code")) for c in result["checks"]}


async def jwk_of(api: Api, algorithm: str) -> dict[str, Any]:
    """The connector's active credential-signing public key of ``algorithm``, as published."""
    kid = api.rt.keystore.signer("credential-signing", algorithm).key_id  # type: ignore[arg-type]
    jwks = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    jwk: dict[str, Any] = next(k for k in jwks if k["kid"] == kid)
    return jwk


@pytest.mark.parametrize("suite", list(SUITES))
async def test_each_cryptosuite_issues_and_verifies_here_and_independently(
    api: Api, suite: str
) -> None:
    secured = await issue(api, proofType="DataIntegrityProof", cryptosuite=suite)
    proof = secured["proof"]
    # Data Integrity 1.0 section 2.1 and the cryptosuite's proof configuration
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == suite
    assert proof["proofPurpose"] == "assertionMethod"
    assert proof["proofValue"].startswith("z")
    assert proof["created"].endswith("Z")
    # the issuer is the did:key that controls the verification method, and that key is the
    # one the connector publishes in its JWKS
    did, _, fragment = proof["verificationMethod"].partition("#")
    assert secured["issuer"] == did == f"did:key:{fragment}"
    published = await jwk_of(api, SUITES[suite])
    verify_independently(secured, key_of_jwk(published))
    verify_independently(secured, key_of_multikey(fragment))
    # the status entry is a W3C Bitstring Status List entry, as in every VC 2.0 credential
    assert secured["credentialStatus"][0]["type"] == "BitstringStatusListEntry"

    result = await verify(api, secured)
    assert result["verified"] is True, result
    assert result["problemDetails"] == []
    assert result["results"]["format"] == "data_integrity"
    assert result["results"]["template"] == "student_status@1"
    assert result["results"]["proof"] == [
        {"valid": True, "input": {k: v for k, v in proof.items() if k != "proofValue"}}
    ]
    assert {name: status for name, (status, _) in checks(result).items()} == {
        "signature": "pass",
        "schema": "pass",
        "validity": "pass",
        "chain": "not_checked",
        "status": "pass",
        "freshness": "pass",
    }
    assert result["credential"]["credentialSubject"] == STUDENT_VC["credentialSubject"]


async def test_the_issuance_is_recorded_and_audited_with_its_digest(api: Api) -> None:
    secured = await issue(api, cryptosuite="eddsa-rdfc-2022")
    record_id = secured["id"].removeprefix("urn:uuid:")
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        row = (await session.execute(select(Issuance).where(Issuance.id == record_id))).scalar_one()
        leaves = (
            (
                await session.execute(
                    select(AuditLeaf.event).where(AuditLeaf.tenant_id == api.tenant_id)
                )
            )
            .scalars()
            .all()
        )
    assert row.format == "data_integrity"
    assert row.template_id == "student_status@1"
    assert row.key_id == api.rt.keystore.signer("credential-signing", "EdDSA").key_id
    events = [json.loads(e) for e in leaves if json.loads(e).get("credential_id") == record_id]
    assert events[0]["format"] == "data_integrity"
    assert events[0]["credential_sha256"] == row.digest


async def test_proof_type_alone_means_ecdsa_and_options_that_do_not_apply_are_refused(
    api: Api,
) -> None:
    secured = await issue(api, proofType="DataIntegrityProof")
    assert secured["proof"]["cryptosuite"] == "ecdsa-rdfc-2019"
    di = {"proofType": "DataIntegrityProof"}
    for option, value in (
        ("format", "vc2_jose"),
        ("holderJwk", es256().public_jwk()),
        ("vct", "https://vct.example/x"),
        ("providerId", "00000000-0000-0000-0000-000000000000"),
    ):
        problem = await refused(api, {"credential": STUDENT_VC, "options": {**di, option: value}})
        assert problem["errors"][0]["field"] == f"options.{option}", problem
    problem = await refused(
        api, {"credential": STUDENT_VC, "options": {"cryptosuite": "eddsa-jcs-2022"}}
    )
    assert problem["errors"][0]["field"] == "options.cryptosuite"


async def test_the_issuer_must_be_the_did_controlling_the_key(api: Api) -> None:
    """Data Integrity 1.0 section 4: the verification method must be associated with the
    issuer, so a credential naming another issuer (the connector's https id among them) is
    refused rather than signed with a proof no verifier would accept."""
    for issuer in ("https://someone.else", api.rt.settings.issuer_id, "did:key:z6MkOther"):
        problem = await refused(
            api,
            {
                "credential": {**STUDENT_VC, "issuer": issuer},
                "options": {"cryptosuite": "eddsa-rdfc-2022"},
            },
        )
        assert problem["errors"][0]["field"] == "credential.issuer"
        assert "did:key:z6Mk" in problem["detail"]
    own = await issue(api, cryptosuite="eddsa-rdfc-2022")
    again = await issue(
        api,
        cryptosuite="eddsa-rdfc-2022",
        credential={**STUDENT_VC, "issuer": {"id": own["issuer"], "name": "Pavilion"}},
    )
    assert again["issuer"] == {"id": own["issuer"], "name": "Pavilion"}
    assert (await verify(api, again))["verified"] is True


async def test_tampering_fails_each_with_its_reason(api: Api) -> None:
    secured = await issue(api, cryptosuite="ecdsa-rdfc-2019")
    cases: list[tuple[str, Any, str, str]] = [
        (
            "a claim",
            ("credentialSubject", {"studentStatus": {"current": False}}),
            "signature",
            "bad_signature",
        ),
        ("validUntil", ("validUntil", "2099-01-01T00:00:00Z"), "signature", "bad_signature"),
        (
            "the proof's created",
            ("proof.created", "2020-01-01T00:00:00Z"),
            "signature",
            "bad_signature",
        ),
        ("the proof value", ("proof.proofValue", "z" + "1" * 20), "signature", "bad_proof_value"),
        (
            "the cryptosuite",
            ("proof.cryptosuite", "ecdsa-jcs-2019"),
            "signature",
            "unknown_cryptosuite",
        ),
        (
            "the purpose",
            ("proof.proofPurpose", "authentication"),
            "signature",
            "wrong_proof_purpose",
        ),
        ("the issuer", ("issuer", "did:example:someone"), "signature", "controller_not_issuer"),
        ("an undefined term", ("sneaky", "x"), "schema", "json_ld"),
    ]
    for what, (path, value), check, code in cases:
        tampered = copy.deepcopy(secured)
        target = tampered
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
        result = await verify(api, tampered)
        assert result["verified"] is False, what
        assert checks(result)[check] == ("fail", code), (what, result["checks"])
        problem = result["problemDetails"][0]
        assert problem["code"] == code
        assert problem["detail"]
        if check == "signature":
            assert problem["type"].endswith("#CRYPTOGRAPHIC_SECURITY_ERROR")
            assert "credential" not in result  # nothing unverified is handed back
        key = key_of_jwk(await jwk_of(api, "ES256"))
        if code == "json_ld":
            # JSON-LD expansion drops an undefined term, so the signature still "covers" the
            # document: the reason the connector refuses such a document before the proof
            verify_independently(tampered, key)
            continue
        with pytest.raises((InvalidSignature, AssertionError, KeyError, ValueError)):
            verify_independently(tampered, key)


async def test_a_valid_proof_by_a_key_the_connector_does_not_hold_is_not_trusted(
    api: Api,
) -> None:
    """A did:key proof verifies by itself; /credentials/verify trusts the connector's keys
    (its JWKS) only, as it does for every other format."""
    stranger = eddsa()
    public = multikey.encode_public_key(multikey.public_key_from_jwk(stranger.public_jwk()))
    did = f"did:key:{public}"
    document = {
        **STUDENT_VC,
        "@context": [jsonld.VC_V2, jsonld.PAVILION_ELIGIBILITY_V1],
        "id": "urn:uuid:9a3c1f0e-2b7d-4c55-8e1a-0f6b2d9c4e11",
        "issuer": did,
        "validFrom": "2026-01-01T00:00:00Z",
    }
    secured = await proofs.add_proof(
        document, stranger, verification_method=f"{did}#{public}", created=datetime.now(UTC)
    )
    result = await verify(api, secured)
    assert checks(result)["signature"] == ("fail", "unknown_issuer_key")
    assert did in result["problemDetails"][0]["detail"]


async def test_a_revoked_credential_fails_its_status_check(api: Api) -> None:
    secured = await issue(api, cryptosuite="eddsa-rdfc-2022")
    credential_id = secured["id"].removeprefix("urn:uuid:")
    response = await api.client.post(
        f"/v1/credentials/{credential_id}/status",
        json={"action": "revoke", "reason": "left the course"},
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 200, response.text
    result = await verify(api, secured)
    assert result["verified"] is False
    assert checks(result)["status"][0] == "fail"
    assert checks(result)["signature"] == ("pass", None)


async def test_proofless_presentations_verify_embedded_proofs(api: Api) -> None:
    good = await issue(api, cryptosuite="eddsa-rdfc-2022")
    bad = copy.deepcopy(good)
    bad["credentialSubject"]["studentStatus"]["current"] = False
    presentation = {
        "@context": [jsonld.VC_V2],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [good, bad],
    }
    response = await api.client.post(
        "/presentations/verify", json={"presentation": presentation}, headers=api.auth("broker")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verified"] is False
    first, second = body["credentialResults"]
    assert first["verified"] is True
    assert first["results"]["format"] == "data_integrity"
    assert checks(second)["signature"] == ("fail", "bad_signature")


async def test_a_credential_without_an_issuer_fails_before_any_key_is_looked_up(
    api: Api,
) -> None:
    secured = await issue(api, cryptosuite="eddsa-rdfc-2022")
    del secured["issuer"]
    result = await verify(api, secured)
    assert checks(result)["schema"] == ("fail", "bad_issuer")
    assert checks(result)["signature"][0] == "not_checked"


async def test_without_a_did_web_there_is_no_did_document(api: Api) -> None:
    response = await api.client.get("/.well-known/did.json")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "did:key" in response.json()["detail"]


async def _di_presentation(
    api: Api, holder: Holder, signer: Holder | None = None, **proof: Any
) -> dict[str, Any]:
    """A holder's presentation with an embedded proof (made by di_support, not the
    connector), carrying a Data Integrity credential and a vc+jwt one, both about the holder."""
    subject = {"id": holder.did, "studentStatus": {"current": True}}
    embedded = await issue(
        api, cryptosuite="ecdsa-rdfc-2019", credential={**STUDENT_VC, "credentialSubject": subject}
    )
    enveloped = await issue(
        api, format="vc2_jose", credential={**STUDENT_VC, "credentialSubject": subject}
    )
    presentation = {
        "@context": [jsonld.VC_V2],
        "type": ["VerifiablePresentation"],
        "holder": holder.did,
        "verifiableCredential": [embedded, enveloped],
    }
    options = {"challenge": "c-81f2", "domain": "https://verifier.example", **proof}
    signer = signer or holder
    return sign_independently(
        presentation,
        signer.private,
        signer.kid,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **options,
    )


async def verify_presentation(
    api: Api, presentation: Any, **options: Any
) -> tuple[int, dict[str, Any]]:
    options = {"challenge": "c-81f2", "domain": "https://verifier.example", **options}
    response = await api.client.post(
        "/presentations/verify",
        json={"verifiablePresentation": presentation, "options": options},
        headers=api.auth("broker"),
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


@pytest.mark.parametrize("make", [Holder.ed25519, Holder.p256], ids=["eddsa", "ecdsa"])
async def test_presentations_secured_with_data_integrity_verify_with_their_credentials(
    api: Api, make: Any
) -> None:
    holder = make()
    presentation = await _di_presentation(api, holder)
    status, body = await verify_presentation(api, presentation, returnPresentation=True)
    assert status == 200, body
    assert body["verified"] is True, body
    assert body["results"]["holder"] == {"valid": True, "input": holder.did}
    assert body["results"]["challenge"] == {"valid": True, "input": "c-81f2"}
    assert {c["check"]: c["status"] for c in body["checks"]} == {
        "signature": "pass",
        "schema": "pass",
        "key_binding": "pass",
        "validity": "pass",
    }
    embedded, enveloped = body["credentialResults"]
    assert embedded["results"]["format"] == "data_integrity"
    assert enveloped["results"]["format"] == "vc2_jose"
    for result in (embedded, enveloped):
        assert result["verified"] is True
        assert checks(result)["key_binding"] == ("pass", None)
    assert body["verifiablePresentation"] == presentation


async def test_data_integrity_presentations_fail_each_binding_with_its_reason(api: Api) -> None:
    holder = Holder.ed25519()
    cases: list[tuple[dict[str, Any], dict[str, Any], str, str]] = [
        ({}, {"challenge": "another"}, "key_binding", "wrong_challenge"),
        ({}, {"domain": "https://elsewhere.example"}, "key_binding", "wrong_domain"),
        ({"purpose": "assertionMethod"}, {}, "signature", "wrong_proof_purpose"),
        ({"signer": Holder.ed25519()}, {}, "key_binding", "holder_key_mismatch"),
    ]
    for proof, options, check, code in cases:
        presentation = await _di_presentation(api, holder, **proof)
        status, body = await verify_presentation(api, presentation, **options)
        assert status == 200, body
        assert body["verified"] is False
        assert {c["check"]: (c["status"], c.get("code")) for c in body["checks"]}[check] == (
            "fail",
            code,
        ), (proof, options, body["checks"])
        assert body["credentialResults"] == []  # nothing checked for a holder not established
    # a credential slipped in after the holder signed
    presentation = await _di_presentation(api, holder)
    presentation["verifiableCredential"].append(presentation["verifiableCredential"][0])
    _, body = await verify_presentation(api, presentation)
    assert {c["check"]: c.get("code") for c in body["checks"]}["signature"] == "bad_signature"
    # a secured presentation needs both the challenge and the domain; a proofless one none
    response = await api.client.post(
        "/presentations/verify",
        json={"verifiablePresentation": presentation, "options": {"domain": "https://v.example"}},
        headers=api.auth("broker"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "options.challenge"
    response = await api.client.post(
        "/presentations/verify", json={"presentation": presentation}, headers=api.auth("broker")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "presentation.proof"
