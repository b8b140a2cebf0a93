"""DP authentication: OAuth2 client credentials and private_key_jwt, tokens cached and refreshed."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey
from pydantic import SecretStr

from connect_support import FakeClock, mock_client, provider
from pavilion.connect.auth import (
    CLIENT_ASSERTION_TYPE,
    DpAuthenticator,
    TokenEndpointUnavailable,
    basic_credentials,
)
from pavilion.connect.events import MemorySink
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.security import AgentSecurity, BearerJwtConfig
from pavilion.dpagent.token_server import (
    TokenClient,
    TokenServerConfig,
    create_token_server_app,
    secret_digest,
)
from pavilion.errors import ProviderBadResponse
from pavilion.providers.types import DpAuthSettings, Endpoint
from pavilion.synth.roster import generate_roster
from waiting import until

HOME = Endpoint("eu-west", "EU", "http://agent")
TOKEN_URL = "http://as/oauth2/token"
SECRET = "a-client-secret-with-entropy"


def _oauth(**changes: Any) -> DpAuthSettings:
    values: dict[str, Any] = {
        "method": "oauth2_client_credentials",
        "token_url": TOKEN_URL,
        "client_id": "pavilion",
        "client_secret": SECRET,
        "scope": "dp.lookup",
    }
    return DpAuthSettings(**(values | changes))


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_basic_credentials_are_form_encoded_first() -> None:
    header = basic_credentials("a b", "p:w+")
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    assert decoded == "a+b:p%3Aw%2B"


class TokenServerFake:
    """A token endpoint with a switch, counting requests."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.status = 200
        self.lifetime = 100
        self.forms: list[dict[str, str]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "as":
            self.calls += 1
            if self.down:
                raise httpx.ConnectError("refused", request=request)
            self.forms.append(dict(parse_qsl(request.content.decode())))
            self.headers.append(request.headers)
            if self.status != 200:
                return httpx.Response(self.status, json={"error": "invalid_client"})
            return httpx.Response(
                200,
                json={
                    "access_token": f"token-{self.calls}",
                    "token_type": "Bearer",
                    "expires_in": self.lifetime,
                },
            )
        auth = request.headers["authorization"]
        if auth == "Bearer revoked":
            return httpx.Response(401)
        return httpx.Response(200, json={"found": False, "token": auth})


async def test_tokens_are_cached_refreshed_early_in_the_background_and_reused() -> None:
    clock = FakeClock()
    server = TokenServerFake()
    client, sink = mock_client(server, clock=clock)
    dp = provider(HOME, auth=_oauth(), api_key=None)
    results = await asyncio.gather(*(client.lookup(dp, [HOME], {"id": "S"}) for _ in range(20)))
    assert server.calls == 1  # concurrent requests shared one fetch
    assert server.headers[0]["authorization"] == basic_credentials("pavilion", SECRET)
    assert server.forms[0] == {"grant_type": "client_credentials", "scope": "dp.lookup"}
    assert len(results) == 20
    clock.advance(80)  # past 75% of the lifetime: still valid, refreshed in the background
    await client.lookup(dp, [HOME], {"id": "S"})
    await until(lambda: server.calls >= 2, what="the background refresh")
    assert server.calls == 2
    server.down = True
    clock.advance(80)  # the refreshed token (issued at 80 for 100 s) is due, still valid
    await client.lookup(dp, [HOME], {"id": "S"})
    await until(lambda: "auth_token_failed" in sink.kinds(), what="the failed refresh")
    assert server.calls == 3  # the background refresh failed; the request did not
    assert "auth_token_failed" in sink.kinds()
    clock.advance(200)  # now the token has expired and the token endpoint is down
    with pytest.raises(TokenEndpointUnavailable) as info:
        await client.lookup(dp, [HOME], {"id": "S"})
    assert info.value.extra["reason"] == "token_endpoint_unavailable"
    assert "token endpoint is unreachable" in info.value.detail
    issued = [e for e in sink.events if e.kind == "auth_token_issued"]
    assert issued
    assert "token" not in json.dumps([e.data for e in issued]).replace("auth_token", "")
    await client.aclose()


async def test_a_rejected_token_is_replaced_once() -> None:
    server = TokenServerFake()
    client, _ = mock_client(server)
    dp = provider(HOME, auth=_oauth(), api_key=None)
    auth = client._auth
    await auth.token(dp, 1.0)
    auth._slots[dp.id].token.value = "revoked"  # type: ignore[union-attr]
    result = await client.lookup(dp, [HOME], {"id": "S"})
    assert result.found is False
    assert server.calls == 2
    await client.aclose()


async def test_token_endpoint_refusal_and_nonsense_are_bad_responses() -> None:
    server = TokenServerFake()
    server.status = 401
    client, _ = mock_client(server)
    dp = provider(HOME, auth=_oauth(), api_key=None)
    with pytest.raises(ProviderBadResponse, match="invalid_client"):
        await client.lookup(dp, [HOME], {"id": "S"})
    server.status = 503
    with pytest.raises(TokenEndpointUnavailable, match="HTTP 503"):
        await client.lookup(dp, [HOME], {"id": "S"})
    await client.aclose()

    def nonsense(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": 5, "token_type": "mac"})

    other, _ = mock_client(nonsense)
    with pytest.raises(ProviderBadResponse, match="no bearer access token"):
        await other.lookup(dp, [HOME], {"id": "S"})
    missing = provider(HOME, auth=DpAuthSettings(method="oauth2_client_credentials"), api_key=None)
    with pytest.raises(ProviderBadResponse, match="no token endpoint"):
        await other.lookup(missing, [HOME], {"id": "S"})
    await other.aclose()


def test_client_assertion_is_an_rfc7523_jwt_that_an_independent_library_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    settings = _oauth(
        method="private_key_jwt", assertion_key=_pem(key), algorithm="ES256", key_id="k1"
    )
    authenticator = DpAuthenticator(
        lambda p, u: httpx.AsyncClient(), MemorySink(), wall_clock=lambda: 1_800_000_000.0
    )
    assertion = authenticator.client_assertion("p1", settings)
    # PyJWT (a test dependency only) verifies what joserfc signed at run time.
    assert jwt.get_unverified_header(assertion) == {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=["ES256"],
        audience=TOKEN_URL,
        issuer="pavilion",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "pavilion"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 60
    assert claims["iat"] == 1_800_000_000
    assert len(claims["jti"]) >= 24
    assert authenticator.client_assertion("p1", settings) != assertion  # a fresh jti each time
    with pytest.raises(ProviderBadResponse):
        authenticator.client_assertion("p1", _oauth(method="private_key_jwt"))


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    ],
)
def test_client_assertions_signed_with_ed25519_and_rsa_keys_verify_elsewhere(
    key: Any, algorithm: str
) -> None:
    settings = _oauth(method="private_key_jwt", assertion_key=_pem(key), algorithm=algorithm)
    authenticator = DpAuthenticator(lambda p, u: httpx.AsyncClient(), MemorySink())
    assertion = authenticator.client_assertion("p1", settings)
    assert jwt.get_unverified_header(assertion) == {"alg": algorithm, "typ": "JWT"}
    claims = jwt.decode(assertion, key.public_key(), algorithms=[algorithm], audience=TOKEN_URL)
    assert claims["sub"] == "pavilion"


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each host's requests to its own in-process ASGI app."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self._transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transports[request.url.host].handle_async_request(request)


@pytest.mark.parametrize("method", ["oauth2_client_credentials", "private_key_jwt"])
async def test_the_connector_gets_tokens_the_dp_agent_accepts(method: str) -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_public = client_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    registered = (
        TokenClient(client_id="pavilion", secret_sha256=secret_digest(SECRET))
        if method == "oauth2_client_credentials"
        else TokenClient(client_id="pavilion", public_key=client_public.decode())
    )
    as_app = create_token_server_app(
        TokenServerConfig(
            issuer="https://as.dp.example", audience="dp-agent", clients=(registered,)
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=as_app), base_url="http://as"
    ) as http:
        jwks = (await http.get("/.well-known/jwks.json")).json()
    roster = generate_roster(5, seed=1, reference_date=date(2026, 1, 1))
    agent = create_agent_app(
        AgentConfig(
            security=AgentSecurity(
                oauth2=BearerJwtConfig(
                    issuer="https://as.dp.example", audience="dp-agent", jwks=jwks
                )
            )
        ),
        RecordIndex(roster, as_of=datetime(2026, 1, 1, tzinfo=UTC)),
    )
    settings = _oauth(method=method, client_secret=None)
    if method == "private_key_jwt":
        settings = _oauth(
            method=method, client_secret=None, assertion_key=_pem(client_key), algorithm="ES256"
        )
    else:
        settings = _oauth()
    sink = MemorySink()
    from pavilion.connect.client import ProviderClient, RetryPolicy

    client = ProviderClient(
        timeout_seconds=5,
        connect_timeout_seconds=1,
        retry=RetryPolicy(0, 0.001),
        transport=HostRouter({"as": as_app, "agent": agent}),
        events=sink,
    )
    dp = provider(HOME, auth=settings, api_key=None)
    result = await client.lookup(dp, [HOME], {"student_id": roster[0].student_id})
    assert result.found
    assert result.record is not None
    assert result.record["student_id"] == roster[0].student_id
    issued = next(e for e in sink.events if e.kind == "auth_token_issued")
    assert issued.data["auth_method"] == method
    await client.aclose()
    # Without a token the agent says 401; the API key scheme is not accepted either.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=agent), base_url="http://agent"
    ) as http:
        refused = await http.post(
            "/v1/lookup",
            json={"identifiers": {"student_id": "S1"}},
            headers={"authorization": "Bearer " + "k" * 20},
        )
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_agent_settings_refuse_an_api_key_beside_oauth2() -> None:
    public = ECKey.generate_key("P-256").as_dict(private=False)
    jwks = {"keys": [public | {"kid": "k"}]}
    with pytest.raises(ValueError, match="not both"):
        AgentConfig(
            api_key=SecretStr("k" * 20),
            security=AgentSecurity(oauth2=BearerJwtConfig(issuer="i", audience="a", jwks=jwks)),
        )
    with pytest.raises(ValueError, match="API key is required"):
        AgentConfig(security=AgentSecurity())


def test_client_assertion_type_is_the_registered_urn() -> None:
    assert CLIENT_ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
