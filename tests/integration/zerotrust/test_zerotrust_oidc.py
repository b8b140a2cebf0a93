"""Issue 14, item 15: a tenant may trust an OIDC provider's signed JWT access tokens.

The provider's JWKS is served over real HTTP on loopback and can rotate; every token is made
by PyJWT with keys from pyca cryptography (neither is what the connector verifies with), and
the connector runs as a real server. Each refusal below is an attack on bearer JWTs: a
foreign issuer or audience, an expired token, ``alg: none``, an HMAC keyed with the public key,
a key the issuer never published, an algorithm off the allow-list, and a flood of unknown
``kid`` values meant to make the connector hammer the JWKS endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from databases import sqlite_database
from pavilion.api.app import create_app
from pavilion.config.settings import OidcProvider, load_settings
from pavilion.runtime import build_runtime
from pavilion.serving import BackgroundServer
from pavilion.tenancy import oidc
from pavilion.tenancy.oidc import OidcVerifier
from pavilion.tenancy.roles import Role
from pavilion.tenancy.service import Principal
from zerotrust_support import make_tenants

AUDIENCE = "https://connector.example"


class JwksServer:
    """An identity provider's JWKS endpoint on loopback, counting its fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.jwks_uri = f"{self.issuer}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def publish(self, kid: str, public: Any, algorithm: type[Any]) -> None:
        jwk = json.loads(algorithm.to_jwk(public))
        self.keys.append({**jwk, "kid": kid, "use": "sig"})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A connector trusting one OIDC provider for tenant-a, and that provider's keys."""
    jwks = JwksServer()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish("rsa-1", rsa_key.public_key(), RSAAlgorithm)
    jwks.publish("ec-1", ec_key.public_key(), ECAlgorithm)
    sqlite_database(tmp_path)
    tenants = make_tenants(load_settings(None, data_dir=tmp_path), "tenant-a", "tenant-b")
    settings = load_settings(
        None,
        data_dir=tmp_path,
        oidc_providers=[
            {
                "tenant": tenants["tenant-a"][0],
                "issuer": jwks.issuer,
                "audience": AUDIENCE,
                "jwks_uri": jwks.jwks_uri,
                "algorithms": ["RS256", "ES256"],
                "role_claim": "realm_access.roles",
                "roles": {"pavilion-auditor": "auditor", "pavilion-broker": "broker"},
            }
        ],
    )
    server = BackgroundServer(create_app(build_runtime(settings)))
    with server:
        yield {
            "url": server.url,
            "jwks": jwks,
            "rsa": rsa_key,
            "ec": ec_key,
            "tenants": tenants,
        }
    jwks.close()


def _claims(idp: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": idp["jwks"].issuer,
        "aud": AUDIENCE,
        "sub": "ada.lovelace@example.org",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["pavilion-broker"]},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(idp: dict[str, Any], *, kid: str = "rsa-1", alg: str = "RS256", **claims: Any) -> str:
    key = idp["rsa"] if alg.startswith("RS") else idp["ec"]
    return jwt.encode(_claims(idp, **claims), key, algorithm=alg, headers={"kid": kid})


def _get(idp: dict[str, Any], path: str, token: str) -> httpx.Response:
    return httpx.get(idp["url"] + path, headers={"authorization": f"Bearer {token}"}, timeout=10)


def _refused(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def test_a_trusted_token_acts_as_its_mapped_role_in_its_tenant(idp: dict[str, Any]) -> None:
    broker = _token(idp)
    assert _get(idp, "/v1/providers", broker).status_code == 200
    _refused(_get(idp, "/v1/audit/checkpoint", broker), 403)  # a broker does not read audit

    auditor = _token(idp, kid="ec-1", alg="ES256", realm_access={"roles": ["pavilion-auditor"]})
    checkpoint = _get(idp, "/v1/audit/checkpoint", auditor)
    assert checkpoint.status_code == 200, checkpoint.text
    tenant_a = idp["tenants"]["tenant-a"][0]
    assert checkpoint.json()["origin"].endswith(tenant_a)  # the provider's tenant, no other


def test_tokens_for_another_issuer_audience_or_time_are_refused(idp: dict[str, Any]) -> None:
    now = int(time.time())
    assert "issuer is not trusted" in _refused(
        _get(idp, "/v1/providers", _token(idp, iss="https://evil.example"))
    )
    assert "aud" in _refused(_get(idp, "/v1/providers", _token(idp, aud="https://other.example")))
    assert "not valid" in _refused(_get(idp, "/v1/providers", _token(idp, exp=now - 3600)))
    _refused(_get(idp, "/v1/providers", _token(idp, exp=None)))  # exp is required
    _refused(_get(idp, "/v1/providers", _token(idp, sub=None)))  # so is sub
    _refused(_get(idp, "/v1/providers", _token(idp, nbf=now + 3600)))  # not yet valid
    unmapped = _token(idp, realm_access={"roles": ["admin"]})
    assert "maps to no role" in _refused(_get(idp, "/v1/providers", unmapped))


def test_algorithm_attacks_are_refused(idp: dict[str, Any]) -> None:
    unsigned = jwt.encode(_claims(idp), None, algorithm="none", headers={"kid": "rsa-1"})
    assert "algorithm 'none' is not allowed" in _refused(_get(idp, "/v1/providers", unsigned))

    # HS256 keyed with the RSA public key, the classic confusion: the algorithm is off the list.
    public_pem = (
        idp["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    forged = _hs256(_claims(idp), public_pem, header)
    assert "HS256" in _refused(_get(idp, "/v1/providers", forged))

    # An allowed algorithm with a key of the wrong type: ES256 naming the RSA key's kid.
    crossed = _token(idp, kid="rsa-1", alg="ES256")
    assert "not in the issuer's JWKS" in _refused(_get(idp, "/v1/providers", crossed))

    # ES512 is asymmetric but not on this provider's allow-list.
    p521 = ec.generate_private_key(ec.SECP521R1())
    es512 = jwt.encode(_claims(idp), p521, algorithm="ES512", headers={"kid": "ec-1"})
    assert "ES512" in _refused(_get(idp, "/v1/providers", es512))


def _hs256(claims: dict[str, Any], secret: bytes, header: dict[str, str]) -> str:
    """An HS256 JWT built by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def test_a_key_the_issuer_never_published_is_refused(idp: dict[str, Any]) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(idp), impostor, algorithm="RS256", headers={"kid": "rsa-1"})
    assert "signature does not verify" in _refused(_get(idp, "/v1/providers", forged))
    no_kid = jwt.encode(_claims(idp), idp["rsa"], algorithm="RS256")
    assert "names no key" in _refused(_get(idp, "/v1/providers", no_kid))


def test_rotated_keys_are_fetched_once_and_unknown_kids_do_not_flood_the_idp(
    idp: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _get(idp, "/v1/providers", _token(idp)).status_code == 200
    fetched = idp["jwks"].fetches
    for _ in range(20):  # random kids: at most one refetch per interval, whatever the rate
        stranger = _token(idp, kid=secrets.token_hex(8))
        assert "not in the issuer's JWKS" in _refused(_get(idp, "/v1/providers", stranger))
    assert idp["jwks"].fetches - fetched <= 1

    # The provider rotates in a new key: once the interval has passed, one refetch finds it
    # (the interval is shortened here so that the test need not wait ten seconds).
    monkeypatch.setattr(oidc, "REFETCH_INTERVAL_S", 0.5)
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp["jwks"].publish("rsa-2", rotated.public_key(), RSAAlgorithm)
    token = jwt.encode(_claims(idp), rotated, algorithm="RS256", headers={"kid": "rsa-2"})
    deadline = time.monotonic() + 15
    while (answer := _get(idp, "/v1/providers", token)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)


def test_an_unreachable_jwks_is_a_503_to_retry_not_a_401(idp: dict[str, Any]) -> None:
    idp["jwks"].status = 500
    answer = _get(idp, "/v1/providers", _token(idp))
    _refused(answer, 503)
    assert answer.json()["type"].endswith("/identity-provider-unavailable")
    assert int(answer.headers["retry-after"]) > 0


def test_the_principal_is_a_hash_of_issuer_and_subject_never_the_subject(
    idp: dict[str, Any],
) -> None:
    # The principal's id is what audit entries record as the actor (status changes, keys).
    provider = OidcProvider(
        tenant=idp["tenants"]["tenant-b"][0],
        issuer=idp["jwks"].issuer,
        audience=AUDIENCE,
        jwks_uri=idp["jwks"].jwks_uri,
        roles={"pavilion-broker": "broker"},
        role_claim="realm_access.roles",
    )

    async def authenticate() -> Principal:
        verifier = OidcVerifier([provider])
        try:
            return await verifier.authenticate(_token(idp))
        finally:
            await verifier.aclose()

    principal = asyncio.run(authenticate())
    assert principal.tenant_id == idp["tenants"]["tenant-b"][0]
    assert principal.role is Role.BROKER
    assert principal.token_id.startswith("oidc:")
    assert "ada" not in principal.token_id
    assert "example" not in principal.token_id
    again = asyncio.run(authenticate())
    assert again.token_id == principal.token_id  # stable: one subject, one actor
