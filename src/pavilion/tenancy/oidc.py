"""Federated identity: a tenant may trust an OpenID Connect provider's JWT access tokens.

For each provider in ``PAVILION_OIDC_PROVIDERS`` the connector accepts a signed JWT whose
``iss`` is the provider's issuer, whose ``aud`` names the configured audience, which has not
expired (``exp`` required, ``nbf`` and ``iat`` honoured, with a small leeway) and which carries
a ``sub``. The signature is checked with joserfc against the provider's JWKS:

- the header's ``alg`` must be on the provider's allow-list, which the settings limit to
  asymmetric algorithms (never ``none`` or an HMAC that would take a public key as secret);
  it is checked before any key is looked up, and the key must be of the algorithm's type;
- the JWKS is fetched over HTTPS and cached (cachetools TTL, per JWKS URL); a ``kid`` not in
  the cached set triggers one refetch (key rotation), at most once per
  ``REFETCH_INTERVAL_S`` per JWKS so random ``kid`` values cannot turn into a flood of fetches;
- claims map to a role: the values of ``role_claim`` (a string or a list, a dotted path into
  nested claims) are looked up in the provider's ``roles`` table, first match in table order.

A JWKS that cannot be fetched is :class:`IdentityProviderUnavailable` (503, Retry-After), not a
401: the caller's token may be fine. The principal's id is a hash of issuer and subject, so no
subject identifier (often an e-mail address) reaches the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import httpx
from cachetools import TTLCache
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from pavilion.config.settings import OidcProvider
from pavilion.errors import AuthenticationFailed, PavilionError
from pavilion.jose import quiet_eddsa
from pavilion.parsing import loads_json
from pavilion.tenancy.identities import principal_for
from pavilion.tenancy.service import Principal

#: The least time between two fetches of one JWKS caused by an unknown ``kid``.
REFETCH_INTERVAL_S: Final = 10.0
#: A JWKS document larger than this is refused.
MAX_JWKS_BYTES: Final = 256 * 1024
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class IdentityProviderUnavailable(PavilionError):
    """An OIDC provider's keys (its JWKS) cannot be fetched; the caller may retry."""

    code = "identity-provider-unavailable"
    title = "Identity provider unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


def looks_like_jwt(token: str) -> bool:
    """A compact JWS (three base64url parts), as opposed to an API token (``pav_...``)."""
    return token.count(".") == 2 and not token.startswith("pav_")


class OidcVerifier:
    """Verifies access tokens of the configured OIDC providers and maps them to principals."""

    def __init__(
        self,
        providers: Sequence[OidcProvider],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._providers = list(providers)
        for index, provider in enumerate(self._providers):  # refuse bad role names at start-up
            for role in provider.roles.values():
                principal_for(provider.tenant, role, "", where=f"PAVILION_OIDC_PROVIDERS[{index}]")
        self._clock = clock
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        ttl = min((p.jwks_cache_seconds for p in self._providers), default=300)
        self._jwks: TTLCache[str, KeySet] = TTLCache(maxsize=64, ttl=ttl)
        self._fetched_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __bool__(self) -> bool:
        return bool(self._providers)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def authenticate(self, token: str) -> Principal:
        header, claims = _unverified(token)
        provider = self._provider_for(claims)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in provider.algorithms:
            raise AuthenticationFailed(
                f"access token algorithm {algorithm!r} is not allowed for this issuer"
            )
        key = await self._key(provider, header.get("kid"), algorithm)
        try:
            with quiet_eddsa():  # an identity provider may still sign "EdDSA"
                verified = jwt.decode(token, key, algorithms=[algorithm])
        except JoseError as exc:
            raise AuthenticationFailed("the access token's signature does not verify") from exc
        self._check_claims(provider, verified.claims)
        role = _mapped_role(provider, verified.claims)
        subject = f"{provider.issuer}|{verified.claims['sub']}".encode()
        ref = "oidc:" + hashlib.sha256(subject).hexdigest()[:16]
        return principal_for(provider.tenant, role, ref, where="an OIDC provider's role map")

    def _provider_for(self, claims: dict[str, Any]) -> OidcProvider:
        issuer = claims.get("iss")
        audiences = claims.get("aud")
        audience_set = {audiences} if isinstance(audiences, str) else set(audiences or ())
        candidates = [p for p in self._providers if p.issuer == issuer]
        if not candidates:
            raise AuthenticationFailed("the access token's issuer is not trusted")
        for provider in candidates:
            if provider.audience in audience_set:
                return provider
        raise AuthenticationFailed("the access token is not meant for this connector (aud)")

    def _check_claims(self, provider: OidcProvider, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=provider.leeway_seconds,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise AuthenticationFailed(f"the access token is not valid: {exc.description}") from exc

    async def _key(self, provider: OidcProvider, kid: Any, algorithm: str) -> Any:
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("the access token names no key (kid)")
        keys = await self._keys(provider.jwks_uri, refresh=False)
        found = _find(keys, kid, algorithm)
        if found is None:
            last = self._fetched_at.get(provider.jwks_uri, 0.0)
            if self._clock() - last >= REFETCH_INTERVAL_S:  # rotated keys: look again, once
                found = _find(await self._keys(provider.jwks_uri, refresh=True), kid, algorithm)
        if found is None:
            raise AuthenticationFailed("the access token's key (kid) is not in the issuer's JWKS")
        return found

    async def _keys(self, uri: str, *, refresh: bool) -> KeySet:
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:
            cached = self._jwks.get(uri)
            if cached is not None and not refresh:
                return cached
            keys = await self._fetch(uri)
            self._jwks[uri] = keys
            self._fetched_at[uri] = self._clock()
            return keys

    async def _fetch(self, uri: str) -> KeySet:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport, timeout=5.0, follow_redirects=False
            )
        try:
            response = await self._http.get(uri, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(
                f"the OIDC provider's JWKS cannot be fetched: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise IdentityProviderUnavailable(
                f"the OIDC provider's JWKS answered {response.status_code}"
            )
        try:
            document = loads_json(response.content)
            public = [k for k in document["keys"] if isinstance(k, dict) and "d" not in k]
            return KeySet.import_key_set({"keys": [k for k in public if k.get("kty") != "oct"]})
        except (ValueError, KeyError, TypeError, JoseError) as exc:
            raise IdentityProviderUnavailable("the OIDC provider's JWKS is not a JWK set") from exc


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: only to choose the provider and key."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = loads_json(compact.payload)
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise AuthenticationFailed("the access token is not a well-formed JWT") from exc
    if not isinstance(claims, dict):
        raise AuthenticationFailed("the access token's payload is not a JSON object")
    return dict(compact.protected), claims


def _find(keys: KeySet, kid: str, algorithm: str) -> Any:
    """The key with ``kid``, only if its type fits the algorithm (no RSA key for ES256)."""
    for key in keys.keys:
        if key.kid == kid and key.key_type == _KEY_TYPES.get(algorithm[:2]):
            key_alg = key.get("alg")
            if key_alg is None or key_alg == algorithm:
                return key
    return None


def _mapped_role(provider: OidcProvider, claims: dict[str, Any]) -> str:
    value: Any = claims
    for part in provider.role_claim.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    granted = {v for v in items if isinstance(v, str)}
    for claim_value, role in provider.roles.items():
        if claim_value in granted:
            return role
    raise AuthenticationFailed(
        f"the access token's {provider.role_claim!r} claim maps to no role on this connector"
    )
