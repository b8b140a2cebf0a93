"""TLS, mutual TLS and OAuth2 bearer tokens for the DP agent (beside its API key).

- ``tls``: the agent serves HTTPS with its certificate; TLS 1.2 at least, 1.3 preferred.
  With ``client_ca`` set it is **mutual** TLS: a client without a certificate chaining to that
  CA fails the handshake and never reaches the app. Use a CA that issues only connector
  client certificates: every certificate it issued is accepted.
- ``oauth2``: every request (except public paths) must carry ``Authorization: Bearer <JWT>``,
  an RFC 9068 access token (``typ`` ``at+jwt``) signed by the configured authorization server
  (its public keys as a JWKS, inline or in a file, so the agent keeps working while the
  authorization server is down), with the right ``iss`` and ``aud``, unexpired, and holding
  ``required_scope``. ``pavilion.dpagent.token_server`` is a small authorization server that
  issues such tokens; any OAuth2 server that issues JWT access tokens works.

An agent authenticates callers by API key, by OAuth2 bearer token, by mTLS, or by mTLS plus one
of the other two. Settings come from a YAML or JSON file (``pavilion dp-agent --security``).
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pavilion.dpagent.problems import error_response
from pavilion.errors import (
    AuthenticationFailed,
    ConfigurationError,
    PermissionDenied,
    VerificationFailed,
)
from pavilion.jose import JoseKey, check_claims, decode_jwt, jwks_keys, unverified_header
from pavilion.observability.logging import get_logger
from pavilion.serving import BackgroundServer

log = get_logger("pavilion.dpagent")

_VERSIONS: Final = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type)
BEARER_CHALLENGE: Final = 'Bearer realm="pavilion-dp-agent"'


class ServerTlsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    certificate: Path = Field(description="PEM certificate chain of the agent.")
    private_key: Path = Field(description="PEM private key of the agent (keep it 0600).")
    client_ca: Path | None = Field(
        default=None, description="PEM CA(s) of client certificates; set = mutual TLS required."
    )
    min_version: Literal["1.2", "1.3"] = "1.2"


@dataclass(frozen=True)
class VerifyingKey:
    """One key of the authorization server's JWKS, with the one algorithm it verifies."""

    key_id: str
    algorithm_name: str
    key: JoseKey


class BearerJwtConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks: dict[str, Any] | None = Field(default=None, description="The issuer's public JWKS.")
    jwks_file: Path | None = None
    algorithms: tuple[Literal["ES256", "EdDSA", "RS256", "PS256"], ...] = (
        "ES256",
        "EdDSA",
        "RS256",
        "PS256",
    )
    required_scope: str | None = "dp.lookup"
    leeway_s: int = Field(default=30, ge=0, le=300)

    _keys: dict[str, VerifyingKey] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _load_keys(self) -> Self:
        if (self.jwks is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of jwks and jwks_file")
        document = self.jwks
        if self.jwks_file is not None:
            try:
                document = json.loads(self.jwks_file.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"jwks_file {self.jwks_file}: cannot read a JWKS: {exc}") from exc
        try:
            keys = jwks_keys(document or {})
        except ValueError as exc:
            raise ValueError(f"not a usable JWKS: {exc}") from exc
        for kid, algorithm, key in keys:
            if not kid:
                raise ValueError("every key of the JWKS needs a 'kid'")
            self._keys[kid] = VerifyingKey(kid, algorithm, key)
        return self

    def key(self, kid: str) -> VerifyingKey | None:
        return self._keys.get(kid)


class AgentSecurity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tls: ServerTlsConfig | None = None
    oauth2: BearerJwtConfig | None = None

    @property
    def mutual_tls(self) -> bool:
        return self.tls is not None and self.tls.client_ca is not None

    @property
    def authenticates(self) -> bool:
        """Whether these settings alone authenticate callers (without an API key)."""
        return self.oauth2 is not None or self.mutual_tls

    def methods(self) -> list[str]:
        return [m for m, on in (("mtls", self.mutual_tls), ("oauth2", bool(self.oauth2))) if on]

    @classmethod
    def from_file(cls, path: Path) -> AgentSecurity:
        try:
            document = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"{path}: cannot read security settings: {exc}") from exc
        try:
            return cls.model_validate(document or {})
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            raise ConfigurationError(f"{path}: {where}: {first['msg']}") from exc


def server_ssl_context(tls: ServerTlsConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    try:
        context.load_cert_chain(str(tls.certificate), str(tls.private_key))
        if tls.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(tls.client_ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"the agent's TLS files do not load: {exc}") from exc
    context.set_alpn_protocols(["http/1.1"])  # uvicorn speaks HTTP/1.1
    return context


def agent_ssl_context(security: AgentSecurity | None) -> ssl.SSLContext | None:
    """The SSL context the agent serves with, or None for plain HTTP."""
    if security is None or security.tls is None:
        return None
    return server_ssl_context(security.tls)


def install_security(
    app: Any, security: AgentSecurity | None, public_paths: Collection[str]
) -> None:
    """Add the bearer-token check to an agent app when OAuth2 is configured."""
    if security is not None and security.oauth2 is not None:
        app.add_middleware(
            BearerJwtMiddleware, settings=security.oauth2, public_paths=frozenset(public_paths)
        )


class BearerJwtMiddleware:
    """401/403 problem+json unless the request carries a valid access token for this agent."""

    def __init__(
        self, app: ASGIApp, *, settings: BearerJwtConfig, public_paths: frozenset[str]
    ) -> None:
        self._app = app
        self._settings = settings
        self._public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public_paths:
            await self._app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationFailed("send an OAuth2 access token as 'Bearer <token>'")
            validate_access_token(token.strip(), self._settings, now=time.time())
        except (AuthenticationFailed, PermissionDenied) as exc:
            status = 403 if isinstance(exc, PermissionDenied) else 401
            log.warning(
                "dp_agent.request_rejected",
                outcome="unauthenticated" if status == 401 else "forbidden",
                reason=exc.extra.get("reason", "missing"),
            )
            challenge = BEARER_CHALLENGE + (
                ', error="invalid_token"' if status == 401 else ', error="insufficient_scope"'
            )
            response = error_response(status, exc, headers={"WWW-Authenticate": challenge})
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


def validate_access_token(token: str, settings: BearerJwtConfig, *, now: float) -> dict[str, Any]:
    """The token's claims, or AuthenticationFailed / PermissionDenied saying what is wrong."""
    try:
        header = unverified_header(token)
    except VerificationFailed as exc:
        raise AuthenticationFailed(
            "the access token is not a JWT", extra={"reason": "malformed"}
        ) from exc
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
        raise AuthenticationFailed(
            "the token is not an access token (typ at+jwt)", extra={"reason": "typ"}
        )
    key = settings.key(str(header.get("kid", "")))
    if key is None:
        raise AuthenticationFailed(
            "the access token is signed by an unknown key", extra={"reason": "kid"}
        )
    algorithm = key.algorithm_name
    if algorithm not in settings.algorithms or header.get("alg") != algorithm:
        raise AuthenticationFailed(
            "the access token's algorithm is not accepted", extra={"reason": "alg"}
        )
    try:
        _, claims = decode_jwt(token, key.key, [algorithm])
        # Times are checked below against the injected clock.
        check_claims(
            claims,
            require=("exp", "iat", "iss", "aud", "sub"),
            issuer=settings.issuer,
            audience=settings.audience,
        )
    except VerificationFailed as exc:
        raise AuthenticationFailed(
            "the access token is not valid for this agent",
            extra={"reason": exc.extra.get("reason", "invalid")},
        ) from exc
    leeway = settings.leeway_s
    if not all(isinstance(claims.get(c, 0), int | float) for c in ("exp", "iat", "nbf")):
        raise AuthenticationFailed(
            "the access token's times are not numbers", extra={"reason": "times"}
        )
    if now > float(claims["exp"]) + leeway:
        raise AuthenticationFailed("the access token has expired", extra={"reason": "expired"})
    if float(claims["iat"]) > now + leeway or float(claims.get("nbf", 0)) > now + leeway:
        raise AuthenticationFailed("the access token is not valid yet", extra={"reason": "iat"})
    scopes = str(claims.get("scope", "")).split()
    if settings.required_scope is not None and settings.required_scope not in scopes:
        raise PermissionDenied(
            f"the access token lacks the scope {settings.required_scope!r}",
            extra={"reason": "scope"},
        )
    return claims


# --- serving over TLS from a thread (tests, demos, the token server) --------------------------


@contextmanager
def serving(
    app: ASGIApp,
    *,
    tls: ServerTlsConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout_s: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` (HTTPS with ``tls``) from a thread for the ``with`` block; yields its URL."""
    context = server_ssl_context(tls) if tls is not None else None
    with BackgroundServer(
        app, host, port, ssl_context=context, lifespan="off", startup_timeout_s=startup_timeout_s
    ) as server:
        yield server.url


# --- the ``pavilion dp-agent --security`` option ------------------------------------------


def load_cli_security(path: Path | None) -> AgentSecurity | None:
    return AgentSecurity.from_file(path) if path is not None else None


def replaces_api_key(
    security: AgentSecurity | None, api_key_env: str | None, api_key_file: Path | None
) -> bool:
    """mTLS or OAuth2 stand in for the API key unless a key source was named explicitly."""
    return (
        security is not None
        and security.authenticates
        and api_key_env is None
        and api_key_file is None
    )


def announced(
    url: str, security: AgentSecurity | None, *, api_key: bool, insecure: bool
) -> tuple[str, str]:
    """The URL and the auth description the start-up line shows."""
    methods = (["API key"] if api_key else []) + (security.methods() if security else [])
    if security is not None and security.tls is not None:
        url = url.replace("http://", "https://", 1)
    return url, " + ".join(methods) or ("off" if insecure else "API key")
