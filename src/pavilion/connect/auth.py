"""How the connector proves itself to a DP: API key, OAuth2 bearer token, or nothing extra.

- ``api_key``: ``Authorization: Bearer <key>`` (the DP agent also accepts ``X-API-Key``).
- ``oauth2_client_credentials``: an access token from the DP's authorization server, asked
  for with the client credentials grant (RFC 6749 section 4.4), the client authenticating with
  HTTP Basic (``client_secret_basic``, RFC 6749 section 2.3.1).
- ``private_key_jwt``: the same grant, the client authenticating with a JWT it signs
  (RFC 7523 section 2.2; OpenID Connect Core section 9): ``iss`` = ``sub`` = client id,
  ``aud`` = the token endpoint, a fresh ``jti``, and a one-minute lifetime.
- ``mtls`` and ``none``: no header; mutual TLS is set up by the connection pool.

Tokens are cached per provider and refreshed before they expire: after 75% of their lifetime
a request still uses the cached token and starts one refresh in the background; only a
token within ``EXPIRY_SKEW_S`` of expiry (or none) makes a request wait for the token
endpoint, and concurrent requests then share one fetch. A token endpoint that is down
therefore only hurts once the cached token has run out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

from pavilion.connect.events import ConnectionEvent, EventSink, endpoint_label
from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.jose import JoseKey, encode_jwt, jose_key
from pavilion.parsing import loads_json
from pavilion.providers.auth_schemas import load_private_key
from pavilion.providers.types import DpAuthSettings, ProviderConnection

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_METHODS = frozenset({"oauth2_client_credentials", "private_key_jwt"})
REFRESH_AT_FRACTION = 0.75
EXPIRY_SKEW_S = 5.0
ASSERTION_LIFETIME_S = 60
DEFAULT_EXPIRES_IN_S = 300


class TokenEndpointUnavailable(ProviderUnavailable):
    code = "provider-token-endpoint-unavailable"
    title = "Data provider's token endpoint unavailable"


@dataclass
class CachedToken:
    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


@dataclass
class _TokenSlot:
    token: CachedToken | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refreshing: asyncio.Task[None] | None = None


ClientFor = Callable[[ProviderConnection, str], httpx.AsyncClient]


class DpAuthenticator:
    def __init__(
        self,
        client_for: ClientFor,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_for = client_for
        self._events = events
        self._clock = clock
        self._wall = wall_clock
        self._slots: dict[str, _TokenSlot] = {}
        self._keys: dict[tuple[str, str], JoseKey] = {}
        self.fetches = 0

    @staticmethod
    def method(provider: ProviderConnection) -> str:
        return provider.auth.method if provider.auth is not None else provider.auth_type

    async def headers(self, provider: ProviderConnection, timeout_s: float) -> dict[str, str]:
        method = self.method(provider)
        if method in TOKEN_METHODS:
            return {"authorization": f"Bearer {await self.token(provider, timeout_s)}"}
        if provider.api_key is not None:
            return {"authorization": f"Bearer {provider.api_key}"}
        return {}

    def invalidate(self, provider: ProviderConnection) -> None:
        slot = self._slots.get(provider.id)
        if slot is not None:
            slot.token = None

    async def token(self, provider: ProviderConnection, timeout_s: float) -> str:
        slot = self._slots.setdefault(provider.id, _TokenSlot())
        now = self._clock()
        token = slot.token
        if token is not None and now < token.expires_at - EXPIRY_SKEW_S:
            if now >= token.refresh_at and slot.refreshing is None:
                slot.refreshing = asyncio.create_task(self._background_refresh(provider, slot))
            return token.value
        async with slot.lock:
            token = slot.token
            if token is not None and self._clock() < token.expires_at - EXPIRY_SKEW_S:
                return token.value  # another request fetched it while this one waited
            slot.token = await self._fetch(provider, timeout_s)
            return slot.token.value

    async def aclose(self) -> None:
        for slot in self._slots.values():
            if slot.refreshing is not None:
                slot.refreshing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await slot.refreshing

    async def _background_refresh(self, provider: ProviderConnection, slot: _TokenSlot) -> None:
        try:
            async with slot.lock:
                slot.token = await self._fetch(provider, 10.0)
        except (ProviderUnavailable, ProviderBadResponse):
            # Keep the current token; try again a few seconds later rather than per request.
            if slot.token is not None:
                slot.token.refresh_at = self._clock() + 2.0
        finally:
            slot.refreshing = None

    async def _fetch(self, provider: ProviderConnection, timeout_s: float) -> CachedToken:
        settings = provider.auth
        if settings is None or settings.token_url is None or settings.client_id is None:
            raise ProviderBadResponse(
                f"provider {provider.name!r} has no token endpoint configured for "
                f"{self.method(provider)}"
            )
        form = {"grant_type": "client_credentials"}
        if settings.scope:
            form["scope"] = settings.scope
        if settings.audience:
            form["audience"] = settings.audience
        headers = {"accept": "application/json"}
        if settings.method == "private_key_jwt":
            form |= {
                "client_id": settings.client_id,
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.client_assertion(provider.id, settings),
            }
        else:
            headers["authorization"] = basic_credentials(
                settings.client_id, settings.client_secret or ""
            )
        started = self._clock()
        where = endpoint_label(settings.token_url)
        self.fetches += 1
        try:
            response = await self._client_for(provider, settings.token_url).post(
                settings.token_url, data=form, headers=headers, timeout=timeout_s
            )
        except httpx.HTTPError as exc:
            self._emit(provider, "auth_token_failed", where, reason=type(exc).__name__)
            raise TokenEndpointUnavailable(
                f"provider {provider.name!r}: its token endpoint is unreachable "
                f"({type(exc).__name__}); no valid access token is cached",
                extra={"reason": "token_endpoint_unavailable"},
            ) from exc
        if response.status_code >= 500:
            self._emit(provider, "auth_token_failed", where, reason=f"http_{response.status_code}")
            raise TokenEndpointUnavailable(
                f"provider {provider.name!r}: its token endpoint answered HTTP "
                f"{response.status_code}; no valid access token is cached",
                extra={"reason": "token_endpoint_unavailable"},
            )
        body = _json_object(response)
        if response.status_code != 200:
            error = str(body.get("error", "unknown")) if body else "unknown"
            self._emit(provider, "auth_token_failed", where, reason=error[:64])
            raise ProviderBadResponse(
                f"provider {provider.name!r}: its token endpoint refused the connector "
                f"(HTTP {response.status_code}, error {error[:64]!r}); check the client "
                "credentials"
            )
        token = body.get("access_token") if body else None
        token_type = str(body.get("token_type", "")) if body else ""
        if not isinstance(token, str) or not token or token_type.lower() != "bearer":
            self._emit(provider, "auth_token_failed", where, reason="bad_token_response")
            raise ProviderBadResponse(
                f"provider {provider.name!r}: its token endpoint sent no bearer access token"
            )
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN_S) if body else 0
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 0.0
        if lifetime <= EXPIRY_SKEW_S:
            lifetime = DEFAULT_EXPIRES_IN_S
        now = self._clock()
        self._emit(
            provider,
            "auth_token_issued",
            where,
            method=settings.method,
            expires_in_s=round(lifetime),
            fetch_ms=round((now - started) * 1000, 1),
        )
        return CachedToken(
            token, refresh_at=now + lifetime * REFRESH_AT_FRACTION, expires_at=now + lifetime
        )

    def client_assertion(self, provider_id: str, settings: DpAuthSettings) -> str:
        """A signed client assertion JWT (RFC 7523 section 3)."""
        if settings.assertion_key is None or settings.token_url is None:
            raise ProviderBadResponse("private_key_jwt needs a private key and a token endpoint")
        cache_key = (provider_id, settings.assertion_key)
        if cache_key not in self._keys:
            self._keys[cache_key] = jose_key(load_private_key(settings.assertion_key))
        now = int(self._wall())
        claims = {
            "iss": settings.client_id,
            "sub": settings.client_id,
            "aud": settings.token_url,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        header = {"typ": "JWT"} | ({"kid": settings.key_id} if settings.key_id else {})
        return encode_jwt(claims, self._keys[cache_key], settings.algorithm or "ES256", header)

    def _emit(self, provider: ProviderConnection, kind: str, where: str, **data: Any) -> None:
        self._events.emit(
            ConnectionEvent(
                tenant_id=provider.tenant_id,
                provider_id=provider.id,
                kind=kind,
                endpoint=where,
                data={"auth_method": self.method(provider), **data},
            )
        )


def basic_credentials(client_id: str, client_secret: str) -> str:
    """RFC 6749 section 2.3.1: form-urlencode both parts, then HTTP Basic."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = loads_json(response.content, what="the token answer")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
