"""Every format signed inside SoftHSM2 (PKCS#11), through the API; checked by other libraries.

The connector runs with ``keystore_backend: pkcs11``: its credential-signing key, the tenant's
issuer root and the data provider's issuing key are all generated inside the token; the
X.509 certificates are signed by the HSM through the Signer.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier
from sqlalchemy import select

from connector_support import Api
from credentials_support import SoftHsmToken, es256
from di_support import key_of_jwk, verify_independently
from pavilion.credentials import sd_jwt
from pavilion.credentials.issuer_models import IssuerKey
from pavilion.credentials.keys import Pkcs11IssuerKeys
from pavilion.keystore.pkcs11 import Pkcs11Token
from pavilion.synth.roster import StudentRecord, pick_examples

pytestmark = pytest.mark.softhsm

STUDENT_VC = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}


def _token(envelope: dict[str, Any] | str) -> str:
    """The secured form: the JWT of a VC 1.1 JWT VC, else the envelope's data: URL payload."""
    return envelope if isinstance(envelope, str) else str(envelope["id"]).split(",", 1)[1]


async def test_every_format_issues_with_hsm_keys_and_verifies_elsewhere(
    credentials_hsm_api: Api,
) -> None:
    api = credentials_hsm_api
    assert api.rt.keystore.backend == "pkcs11"
    jwks = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    holder = es256()
    for fmt in ("vc2_jose", "sd_jwt_vc", "jwt_vc"):
        options: dict[str, Any] = {"format": fmt}
        if fmt == "sd_jwt_vc":
            options["holderJwk"] = holder.public_jwk()
        response = await api.client.post(
            "/credentials/issue",
            json={"credential": STUDENT_VC, "options": options},
            headers=api.auth("tenant-admin"),
        )
        assert response.status_code == 201, response.text
        envelope = response.json()["verifiableCredential"]
        token = _token(envelope)
        issuer_jwt = token.split("~")[0]
        header = jwt.get_unverified_header(issuer_jwt)
        key = next(k for k in jwks if k["kid"] == header["kid"])
        # Independent checks: PyJWT for the JWS, the reference library for SD-JWT.
        claims = jwt.decode(
            issuer_jwt, jwt.PyJWK(key).key, algorithms=["ES256"], options={"verify_aud": False}
        )
        if fmt == "sd_jwt_vc":
            payload = SDJWTVerifier(
                token, lambda iss, h: JWK.from_json(json.dumps(key)), None, None
            ).get_verified_payload()
            assert payload["student_status"] == {"current": True}
        else:
            assert "StudentStatusCredential" in json.dumps(claims)
        verified = await api.client.post(
            "/credentials/verify",
            json={"verifiableCredential": envelope},
            headers=api.auth("broker"),
        )
        assert verified.json()["verified"] is True, verified.text


async def test_trust_chain_keys_live_in_the_hsm_and_the_chain_verifies(
    credentials_hsm_api: Api, credentials_hsm: SoftHsmToken, roster: list[StudentRecord]
) -> None:
    api = credentials_hsm_api
    provider = await api.register_provider()
    admin = api.auth("tenant-admin")
    root = (await api.client.post("/v1/credentials/trust/root", headers=admin)).json()
    assert root["backend"] == "pkcs11"
    certified = await api.client.post(
        f"/v1/credentials/trust/providers/{provider['id']}", headers=admin
    )
    assert certified.status_code == 201, certified.text
    assert certified.json()["backend"] == "pkcs11"

    # pyca validates the HSM-signed chain on its own.
    root_cert = x509.load_pem_x509_certificate(root["certificate"].encode())
    leaf = x509.load_pem_x509_certificate(certified.json()["certificate"].encode())
    PolicyBuilder().store(Store([root_cert])).time(
        datetime.now(UTC)
    ).build_client_verifier().verify(leaf, [])

    holder = es256()
    current = pick_examples(roster).current
    response = await api.client.post(
        "/v1/verifications",
        json={
            "provider_id": provider["id"],
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": current.student_id}, "residency": "EU"},
            "purpose": "eligibility check",
            "format": "sd_jwt_vc",
            "holder_jwk": holder.public_jwk(),
        },
        headers=api.auth("broker"),
    )
    assert response.status_code == 201, response.text
    credential = response.json()["credential"]
    header = jwt.get_unverified_header(credential.split("~")[0])
    assert header["kid"] == certified.json()["key_id"]
    assert x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0])) == leaf
    presentation = await sd_jwt.present(
        credential,
        holder=holder,
        audience="https://rp.example",
        nonce="n1",
        issued_at=datetime.now(UTC),
    )
    result = await api.client.post(
        "/presentations/verify",
        json={
            "verifiablePresentation": presentation,
            "options": {"challenge": "n1", "domain": "https://rp.example"},
        },
        headers=api.auth("broker"),
    )
    checks = {c["check"]: c for c in result.json()["checks"]}
    assert checks["signature"]["status"] == "pass"
    assert checks["chain"]["status"] == "pass", checks["chain"]
    assert checks["key_binding"]["status"] == "pass"

    # The DB holds only token labels; the keys are non-extractable objects inside the token.
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        references = (
            await session.execute(
                select(IssuerKey.key_ref).where(IssuerKey.tenant_id == api.tenant_id)
            )
        ).scalars()
        labels = [json.loads(r)["pkcs11_label"] for r in references]
    assert len(labels) == 2
    token = api.rt.keystore.token  # type: ignore[attr-defined]
    for label in labels:
        info = await token.akey_info(label)
        assert info.sensitive
        assert not info.extractable
        assert info.local


async def test_pkcs11_issuer_keys_reload_by_label(credentials_hsm: SoftHsmToken) -> None:
    async with Pkcs11Token(credentials_hsm.config()) as token:
        store = Pkcs11IssuerKeys(token)
        reference, signer = await store.create("tenant-abcdefgh", "root-1", "ES256")
        fresh = Pkcs11IssuerKeys(token)
        again = await fresh.load("tenant-abcdefgh", reference)
        assert again.key_id == signer.key_id
        assert await fresh.load("tenant-abcdefgh", reference) is again
        info = await token.akey_info(json.loads(reference)["pkcs11_label"])
        assert info.sensitive
        assert not info.extractable


async def test_data_integrity_proofs_are_signed_inside_the_hsm(credentials_hsm_api: Api) -> None:
    """Both cryptosuites through the API with the PKCS#11 keystore: the Ed25519 key is made
    inside the token on first use, the proofs verify independently with the published keys."""
    api = credentials_hsm_api
    for suite, algorithm in (("eddsa-rdfc-2022", "EdDSA"), ("ecdsa-rdfc-2019", "ES256")):
        response = await api.client.post(
            "/credentials/issue",
            json={"credential": STUDENT_VC, "options": {"cryptosuite": suite}},
            headers=api.auth("tenant-admin"),
        )
        assert response.status_code == 201, response.text
        secured = response.json()["verifiableCredential"]
        signer = api.rt.keystore.signer("credential-signing", algorithm)  # type: ignore[arg-type]
        meta = next(k for k in api.rt.keystore.list_keys() if k.key_id == signer.key_id)
        assert meta.backend == "pkcs11"
        jwks = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
        published = next(k for k in jwks if k["kid"] == signer.key_id)
        verify_independently(secured, key_of_jwk(published))
        verified = await api.client.post(
            "/credentials/verify",
            json={"verifiableCredential": secured},
            headers=api.auth("broker"),
        )
        assert verified.json()["verified"] is True, verified.text
