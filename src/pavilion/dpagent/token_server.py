"""A small OAuth 2.0 authorization server for DP agents: client credentials only.

For a data provider without an identity provider of its own, and for the connector's tests.
It issues RFC 9068 JWT access tokens (``typ`` ``at+jwt``, ES256) that the DP agent validates
offline with this server's public JWKS (``pavilion.dpagent.security.BearerJwtConfig``).

``POST /oauth2/token`` (``application/x-www-form-urlencoded``, RFC 6749 section 4.4):
``grant_type=client_credentials`` and an optional ``scope``; the client authenticates with

- ``client_secret_basic`` (RFC 6749 section 2.3.1): ``Authorization: Basic``; the server
  stores only the SHA-256 of each secret; or
- ``private_key_jwt`` (RFC 7523 section 2.2): ``client_assertion_type`` =
  ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a ``client_assertion`` JWT
  signed with the client's registered key, ``iss`` = ``sub`` = client id, ``aud`` = this token
  endpoint or the issuer, unexpired, lifetime at most 5 minutes, and a ``jti`` never seen before.

Errors follow RFC 6749 section 5.2 (``invalid_client`` is a 401). ``GET /.well-known/jwks.json``
serves the signing key; ``GET /.well-known/oauth-authorization-server`` the RFC 8414 metadata.

    python -m pavilion.dpagent.token_server --config token-server.yaml [--port 0]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, unquote_plus

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pavilion.dpagent.security import ServerTlsConfig, serving
from pavilion.errors import VerificationFailed
from pavilion.jose import (
    JoseKey,
    check_claims,
    decode_jwt,
    encode_jwt,
    jose_key,
    public_jwk,
    unverified_claims,
)

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_S: Final = 300
#: What a client may sign its assertion with (the algorithm its registered key allows).
ASSERTION_ALGORITHMS: Final = ("ES256", "EdDSA", "RS256", "PS256")
TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 (a path)
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenClient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, max_length=200)
    secret_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the client secret."
    )
    public_key: str | None = Field(
        default=None, description="PEM public key that verifies the client's assertions."
    )
    scopes: tuple[str, ...] = ("dp.lookup",)

    @model_validator(mode="after")
    def _one_method(self) -> TokenClient:
        if (self.secret_sha256 is None) == (self.public_key is None):
            raise ValueError("give exactly one of secret_sha256 and public_key")
        if self.public_key is not None:
            _assertion_key(self.public_key)
        return self

    @property
    def auth_method(self) -> Literal["client_secret_basic", "private_key_jwt"]:
        return "client_secret_basic" if self.secret_sha256 else "private_key_jwt"


class TokenServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1, description="'aud' of the tokens: the DP agent.")
    token_lifetime_s: int = Field(default=300, ge=10, le=86_400)
    signing_key: Path | None = Field(
        default=None, description="PEM P-256 private key; a fresh one per start when absent."
    )
    key_id: str = "pavilion-dp-as-1"
    clients: tuple[TokenClient, ...] = Field(min_length=1)
    tls: ServerTlsConfig | None = None


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def create_token_server_app(
    config: TokenServerConfig,
    *,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    key = signing_key or _load_or_generate(config.signing_key)
    signer = jose_key(key)
    published = public_jwk(key) | {"kid": config.key_id, "alg": "ES256", "use": "sig"}
    registry = _Registry(config, {c.client_id: c for c in config.clients}, {})
    app = FastAPI(title="Pavilion DP token server", docs_url=None, redoc_url=None)
    app.state.issued = 0

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return {"keys": [published]}

    @app.get("/.well-known/oauth-authorization-server")
    async def metadata(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "issuer": config.issuer,
            "token_endpoint": base + TOKEN_PATH,
            "jwks_uri": base + "/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
        }

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        try:
            form = dict(parse_qsl((await request.body()).decode("utf-8"), strict_parsing=False))
            if form.get("grant_type") != "client_credentials":
                raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
            now = clock()
            client = registry.authenticate(request, form, now)
            scopes = _granted(form.get("scope"), client)
        except OAuthError as exc:
            headers = dict(_NO_STORE)
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="pavilion-dp-token"'
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description},
                status_code=exc.status,
                headers=headers,
            )
        claims = {
            "iss": config.issuer,
            "sub": client.client_id,
            "aud": config.audience,
            "client_id": client.client_id,
            "scope": " ".join(scopes),
            "iat": int(now),
            "exp": int(now) + config.token_lifetime_s,
            "jti": secrets.token_urlsafe(16),
        }
        access_token = encode_jwt(claims, signer, "ES256", {"kid": config.key_id, "typ": "at+jwt"})
        app.state.issued += 1
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": config.token_lifetime_s,
                "scope": " ".join(scopes),
            },
            headers=_NO_STORE,
        )

    return app


@dataclass
class _Registry:
    config: TokenServerConfig
    clients: dict[str, TokenClient]
    seen_jti: dict[str, float]

    def authenticate(self, request: Request, form: dict[str, str], now: float) -> TokenClient:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                pair = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
                client_id, _, secret = pair.partition(":")
                client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
            client = self.clients.get(client_id)
            if (
                client is None
                or client.secret_sha256 is None
                or not hmac.compare_digest(secret_digest(secret), client.secret_sha256)
            ):
                raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
            return client
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            return self.assertion_client(request, form, now)
        raise OAuthError("invalid_client", "no client authentication", 401)

    def assertion_client(self, request: Request, form: dict[str, str], now: float) -> TokenClient:
        assertion = form.get("client_assertion", "")
        try:
            unverified = unverified_claims(assertion)
        except VerificationFailed as exc:
            raise OAuthError("invalid_client", "the client assertion is not a JWT", 401) from exc
        client_id = str(unverified.get("iss", ""))
        client = self.clients.get(client_id)
        if client is None or client.public_key is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client", "client_id does not match the assertion", 401)
        audiences = [
            str(request.url),
            self.config.issuer,
            str(request.base_url).rstrip("/") + TOKEN_PATH,
        ]
        try:
            _, claims = decode_jwt(
                assertion, _assertion_key(client.public_key), ASSERTION_ALGORITHMS
            )
            # exp and iat are checked below against the injected clock.
            check_claims(
                claims,
                require=("exp", "iss", "sub", "aud", "jti"),
                issuer=client_id,
                audience=audiences,
            )
        except VerificationFailed as exc:
            raise OAuthError(
                "invalid_client", f"client assertion rejected: {exc.detail}", 401
            ) from exc
        if not isinstance(claims["exp"], int | float) or now > float(claims["exp"]) + 5:
            raise OAuthError("invalid_client", "client assertion rejected: expired", 401)
        if (
            not isinstance(claims.get("iat", now), int | float)
            or float(claims.get("iat", now)) > now + 5
        ):
            raise OAuthError("invalid_client", "client assertion rejected: issued later", 401)
        if claims["sub"] != client_id:
            raise OAuthError("invalid_client", "the assertion's sub must be the client id", 401)
        if float(claims["exp"]) - float(claims.get("iat", now)) > MAX_ASSERTION_LIFETIME_S:
            raise OAuthError("invalid_client", "the client assertion lives too long", 401)
        for jti, expiry in list(self.seen_jti.items()):
            if expiry < now:
                del self.seen_jti[jti]
        jti = str(claims["jti"])
        if jti in self.seen_jti:
            raise OAuthError("invalid_client", "the client assertion was replayed", 401)
        self.seen_jti[jti] = float(claims["exp"]) + 5
        return client


def _assertion_key(pem: str) -> JoseKey:
    """A client's registered public key (PEM): EC, RSA or Ed25519/Ed448."""
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(
        key,
        ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        raise ValueError("a client's public key must be an EC, RSA or EdDSA key")
    return jose_key(key)


def _granted(requested: str | None, client: TokenClient) -> list[str]:
    if not requested:
        return list(client.scopes)
    asked = requested.split()
    if not set(asked) <= set(client.scopes):
        raise OAuthError("invalid_scope", "the client may not ask for that scope")
    return asked


def _load_or_generate(path: Path | None) -> ec.EllipticCurvePrivateKey:
    if path is None:
        return ec.generate_private_key(ec.SECP256R1())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: the signing key must be a P-256 EC key")
    return key


def load_config(path: Path) -> TokenServerConfig:
    return TokenServerConfig.model_validate(yaml.safe_load(path.read_text("utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A client-credentials OAuth2 server for DPs.")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    app = create_token_server_app(config)
    with serving(app, tls=config.tls, host=args.host, port=args.port) as url:
        print(f"DP token server on {url}{TOKEN_PATH}", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
