"""Status of an index in a *foreign* status list: fetched over HTTP, trusted only when signed.

A list is trusted when its URL lies under a configured anchor (``status_trust_anchors``:
URL prefix -> JWKS URL; same origin and whole path segments, see
:mod:`pavilion.credentials.status.anchors`) and its JWS verifies against that JWKS (ES256 or
Ed25519 (or EdDSA) only, via :func:`pavilion.jose.verify_compact`). Anything else is refused
with the reason: an unanchored URL, plain HTTP to anything but loopback, a fetch that fails, a
wrong ``typ``, a ``sub``/``id`` that names another list, an expired list, a bad signature.

* IETF Token Status List: ``typ`` ``statuslist+jwt``; ``sub`` equals the list URL; ``exp`` (if
  present) is in the future; the value is read from ``status_list``; cached for ``ttl``
  seconds (capped by ``exp``).
* W3C Bitstring Status List: ``typ`` ``vc+jwt`` holding a ``BitstringStatusListCredential``
  whose ``id`` is the list URL, inside ``validFrom``/``validUntil``; the value is read from
  ``credentialSubject.encodedList``; cached for its ``ttl`` (milliseconds).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from pavilion.credentials.status.anchors import TrustAnchors
from pavilion.credentials.status.bitstring import BitstringStatusList
from pavilion.credentials.status.token_status_list import STATUS_LIST_JWT_TYP, TokenStatusList
from pavilion.errors import PavilionError, VerificationFailed
from pavilion.jose import b64url_decode, verify_compact
from pavilion.parsing import loads_json

#: Largest status list or JWKS document fetched (bytes).
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: How long a fetched JWKS is trusted before it is fetched again (seconds).
JWKS_CACHE_SECONDS = 300.0
#: Lists kept in memory.
CACHE_ENTRIES = 256
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class StatusUnavailable(VerificationFailed):
    """The status of a credential cannot be established; the detail says why."""

    code = "status-unavailable"
    title = "Credential status unavailable"


def _check_transport(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise StatusUnavailable(f"{what} {url} must be fetched over https (plain http: loopback only)")


class _Decoded:
    __slots__ = ("expires", "get")

    def __init__(self, get: Callable[[int], int], expires: float) -> None:
        self.get = get
        self.expires = expires


class RemoteStatusResolver:
    """Resolves ``(list URL, index)`` for lists published by other issuers."""

    def __init__(
        self,
        trust_anchors: dict[str, str],
        *,
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._anchors = TrustAnchors(trust_anchors)
        self._client = client or httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)
        self._owns_client = client is None
        self._clock = clock
        self._lists: OrderedDict[str, _Decoded] = OrderedDict()
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def anchor_for(self, uri: str) -> str:
        """The JWKS URL trusted for ``uri`` (the most specific anchor that covers it)."""
        jwks_url = self._anchors.find(uri)
        if jwks_url is None:
            raise StatusUnavailable(
                f"status list {uri} is not under a trusted issuer (status_trust_anchors); "
                "refusing to trust it"
            )
        return jwks_url

    async def resolve(self, uri: str, index: int) -> int:
        cached = self._lists.get(uri)
        if cached is None or cached.expires <= time.monotonic():
            cached = await self._fetch_list(uri)
            self._lists[uri] = cached
            self._lists.move_to_end(uri)
            while len(self._lists) > CACHE_ENTRIES:
                self._lists.popitem(last=False)
        return cached.get(index)

    async def _get(self, url: str, what: str, accept: str) -> bytes:
        _check_transport(url, what)
        try:
            async with self._client.stream("GET", url, headers={"accept": accept}) as response:
                if response.status_code != 200:
                    raise StatusUnavailable(f"{what} {url} answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise StatusUnavailable(
                            f"{what} {url} is larger than {MAX_DOCUMENT_BYTES} bytes"
                        )
                return bytes(body)
        except httpx.HTTPError as exc:
            raise StatusUnavailable(
                f"{what} {url} could not be fetched: {type(exc).__name__}"
            ) from exc

    async def _jwks_for(self, jwks_url: str, *, fresh: bool = False) -> dict[str, Any]:
        cached = self._jwks.get(jwks_url)
        if cached is not None and not fresh and cached[0] > time.monotonic():
            return cached[1]
        raw = await self._get(
            jwks_url, "trusted JWKS", "application/jwk-set+json, application/json"
        )
        try:
            document = loads_json(raw)
        except ValueError as exc:
            raise StatusUnavailable(f"trusted JWKS {jwks_url} is not JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise StatusUnavailable(f"trusted JWKS {jwks_url} has no 'keys' array")
        self._jwks[jwks_url] = (time.monotonic() + JWKS_CACHE_SECONDS, document)
        return document

    async def _fetch_list(self, uri: str) -> _Decoded:
        jwks_url = self.anchor_for(uri)
        raw = await self._get(uri, "status list", "application/statuslist+jwt, application/vc+jwt")
        token = raw.decode("ascii", errors="replace").strip()
        header = _unverified_header(token, uri)
        jwks = await self._jwks_for(jwks_url)
        if header.get("kid") not in {k.get("kid") for k in jwks["keys"]}:
            jwks = await self._jwks_for(jwks_url, fresh=True)  # the issuer may have rotated
        try:
            verified_header, payload = verify_compact(token, jwks)
        except VerificationFailed as exc:
            raise StatusUnavailable(
                f"status list {uri}: signature does not verify against the trusted JWKS {jwks_url}"
            ) from exc
        typ = verified_header.get("typ")
        try:
            if typ == STATUS_LIST_JWT_TYP:
                return self._token_list(uri, payload)
            if typ == "vc+jwt":
                return self._bitstring_list(uri, payload)
        except PavilionError as exc:
            if isinstance(exc, StatusUnavailable):
                raise
            raise StatusUnavailable(f"status list {uri} is malformed: {exc.detail}") from exc
        raise StatusUnavailable(
            f"status list {uri} has typ {typ!r}: expected statuslist+jwt or vc+jwt"
        )

    def _token_list(self, uri: str, payload: dict[str, Any]) -> _Decoded:
        if payload.get("sub") != uri:
            raise StatusUnavailable(
                f"status list {uri} names another list (sub {payload.get('sub')!r})"
            )
        now = self._clock().timestamp()
        exp = payload.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or exp <= now):
            raise StatusUnavailable(f"status list {uri} has expired")
        status_list = TokenStatusList.decode(payload.get("status_list"))  # type: ignore[arg-type]
        ttl = payload.get("ttl")
        lifetime = float(ttl) if isinstance(ttl, int) and ttl > 0 else 0.0
        if isinstance(exp, int | float):
            lifetime = min(lifetime, exp - now) if lifetime else exp - now
        return _Decoded(
            _checked_get(status_list.get, status_list.size), time.monotonic() + lifetime
        )

    def _bitstring_list(self, uri: str, payload: dict[str, Any]) -> _Decoded:
        types = payload.get("type")
        if not isinstance(types, list) or "BitstringStatusListCredential" not in types:
            raise StatusUnavailable(f"status list {uri} is not a BitstringStatusListCredential")
        if payload.get("id") != uri:
            raise StatusUnavailable(
                f"status list {uri} names another list (id {payload.get('id')!r})"
            )
        now = self._clock()
        valid_from, valid_until = payload.get("validFrom"), payload.get("validUntil")
        if valid_from is not None and _instant(valid_from, uri) > now:
            raise StatusUnavailable(f"status list {uri} is not valid yet")
        if valid_until is not None and _instant(valid_until, uri) <= now:
            raise StatusUnavailable(f"status list {uri} has expired")
        subject = payload.get("credentialSubject")
        if not isinstance(subject, dict) or subject.get("type") != "BitstringStatusList":
            raise StatusUnavailable(f"status list {uri} has no BitstringStatusList subject")
        size = subject.get("statusSize", 1)
        status_list = BitstringStatusList.decode_list(
            subject.get("encodedList"),  # type: ignore[arg-type]
            size if isinstance(size, int) else 0,
        )
        ttl_ms = subject.get("ttl")
        lifetime = ttl_ms / 1000 if isinstance(ttl_ms, int) and ttl_ms > 0 else 0.0
        if valid_until is not None:
            left = (_instant(valid_until, uri) - now).total_seconds()
            lifetime = min(lifetime, left) if lifetime else left
        return _Decoded(
            _checked_get(status_list.get, status_list.size), time.monotonic() + lifetime
        )


def _checked_get(get: Callable[[int], int], size: int) -> Callable[[int], int]:
    def lookup(index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise StatusUnavailable(f"index {index} is outside the status list (size {size})")
        return get(index)

    return lookup


def _instant(value: object, uri: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise StatusUnavailable(f"status list {uri} has an unreadable date {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unverified_header(token: str, uri: str) -> dict[str, Any]:
    try:
        header = loads_json(b64url_decode(token.split(".", maxsplit=1)[0]))
    except (ValueError, IndexError) as exc:
        raise StatusUnavailable(f"status list {uri} is not a compact JWS") from exc
    if not isinstance(header, dict):
        raise StatusUnavailable(f"status list {uri} is not a compact JWS")
    return header
