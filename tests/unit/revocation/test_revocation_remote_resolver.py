"""Foreign status lists: trusted only when anchored and signed; every refusal says why.

The foreign issuer's lists are made here with PyJWT and zlib/gzip directly (not with
pavilion's encoders), so the resolver is checked against independently produced tokens.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pavilion.credentials.status.resolver import RemoteStatusResolver, StatusUnavailable
from pavilion.keystore.software_signer import SoftwareSigner

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
BASE = "https://foreign.example/status/"
JWKS_URL = "https://foreign.example/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = SoftwareSigner(self.key).key_id
        self.jwks = {"keys": [SoftwareSigner(self.key).public_jwk()]}

    def sign(
        self, payload: dict[str, Any], typ: str, kid: str | None = None, key: Any = None
    ) -> str:
        return jwt.encode(
            payload,
            key or self.key,
            algorithm="ES256",
            headers={"typ": typ, "kid": kid or self.kid},
        )


def token_list(uri: str, statuses: dict[int, int], **claims: Any) -> dict[str, Any]:
    data = bytearray(4)  # 16 entries of 2 bits, LSB first
    for index, value in statuses.items():
        data[index * 2 // 8] |= value << (index * 2 % 8)
    payload = {
        "sub": uri,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(days=1)).timestamp()),
        "ttl": 60,
        "status_list": {"bits": 2, "lst": b64url(zlib.compress(bytes(data), 9))},
    }
    payload.update(claims)
    return payload


def bitstring_vc(uri: str, revoked: set[int], **changes: Any) -> dict[str, Any]:
    data = bytearray(131_072 // 8)
    for index in revoked:
        data[index // 8] |= 0x80 >> (index % 8)  # MSB first
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": uri,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": "https://foreign.example",
        "validFrom": "2026-05-01T00:00:00Z",
        "validUntil": "2026-05-02T00:00:00Z",
        "credentialSubject": {
            "id": uri + "#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": "u" + b64url(gzip.compress(bytes(data))),
            "ttl": 30_000,
        },
    }
    document.update(changes)
    return document


class Server:
    """The foreign issuer's HTTP side, through httpx.MockTransport; counts every request."""

    def __init__(self) -> None:
        self.routes: dict[str, httpx.Response] = {}
        self.hits: Counter[str] = Counter()

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.hits[url] += 1
        if url in self.routes:
            return self.routes[url]
        if url.endswith("/unreachable"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(404)

    def resolver(self, anchors: dict[str, str] | None = None) -> RemoteStatusResolver:
        return RemoteStatusResolver(
            {BASE: JWKS_URL} if anchors is None else anchors,
            client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)),
            clock=lambda: NOW,
        )


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(issuer: Issuer) -> Server:
    server = Server()
    server.routes[JWKS_URL] = httpx.Response(200, json=issuer.jwks)
    return server


async def test_a_trusted_token_list_resolves_and_is_cached_for_its_ttl(
    issuer: Issuer, server: Server
) -> None:
    uri = BASE + "1"
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(token_list(uri, {3: 1, 5: 2}), "statuslist+jwt")
    )
    resolver = server.resolver()
    assert [await resolver.resolve(uri, i) for i in (0, 3, 5)] == [0, 1, 2]
    assert server.hits[uri] == 1  # one fetch, then the cache
    assert server.hits[JWKS_URL] == 1
    with pytest.raises(StatusUnavailable, match="outside the status list"):
        await resolver.resolve(uri, 16)
    await resolver.aclose()


async def test_a_trusted_bitstring_credential_resolves(issuer: Issuer, server: Server) -> None:
    uri = BASE + "b1"
    server.routes[uri] = httpx.Response(200, text=issuer.sign(bitstring_vc(uri, {0, 77}), "vc+jwt"))
    resolver = server.resolver()
    assert [await resolver.resolve(uri, i) for i in (0, 1, 77, 131_071)] == [1, 0, 1, 0]


@pytest.mark.parametrize(
    ("payload_changes", "reason"),
    [
        ({"id": BASE + "other"}, "names another list"),
        ({"type": ["VerifiableCredential"]}, "not a BitstringStatusListCredential"),
        ({"validFrom": "2026-06-01T00:00:00Z"}, "not valid yet"),
        ({"validUntil": "2026-04-01T00:00:00Z"}, "has expired"),
        ({"validUntil": "tomorrow"}, "unreadable date"),
        ({"credentialSubject": {"type": "Other"}}, "no BitstringStatusList subject"),
        (
            {"credentialSubject": {"type": "BitstringStatusList", "encodedList": "zzz"}},
            "is malformed",
        ),
    ],
)
async def test_bad_bitstring_credentials_are_refused(
    issuer: Issuer, server: Server, payload_changes: dict[str, Any], reason: str
) -> None:
    uri = BASE + "b2"
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(bitstring_vc(uri, set(), **payload_changes), "vc+jwt")
    )
    with pytest.raises(StatusUnavailable, match=reason):
        await server.resolver().resolve(uri, 0)


@pytest.mark.parametrize(
    ("claims", "typ", "reason"),
    [
        ({"sub": BASE + "other"}, "statuslist+jwt", "names another list"),
        ({"exp": int((NOW - timedelta(seconds=1)).timestamp())}, "statuslist+jwt", "has expired"),
        ({"status_list": {"bits": 3, "lst": "eNo"}}, "statuslist+jwt", "is malformed"),
        ({}, "JWT", "expected statuslist\\+jwt or vc\\+jwt"),
    ],
)
async def test_bad_token_lists_are_refused(
    issuer: Issuer, server: Server, claims: dict[str, Any], typ: str, reason: str
) -> None:
    uri = BASE + "2"
    server.routes[uri] = httpx.Response(200, text=issuer.sign(token_list(uri, {}, **claims), typ))
    with pytest.raises(StatusUnavailable, match=reason):
        await server.resolver().resolve(uri, 0)


async def test_signatures_must_come_from_the_anchored_keys(issuer: Issuer, server: Server) -> None:
    uri = BASE + "3"
    impostor = ec.generate_private_key(ec.SECP256R1())
    # A list signed by another key that claims the trusted kid.
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(token_list(uri, {}), "statuslist+jwt", key=impostor)
    )
    with pytest.raises(StatusUnavailable, match="signature does not verify against the trusted"):
        await server.resolver().resolve(uri, 0)
    # An unknown kid makes the resolver fetch the JWKS again (a rotation) before refusing.
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(token_list(uri, {}), "statuslist+jwt", kid="rotated", key=impostor)
    )
    before = server.hits[JWKS_URL]
    with pytest.raises(StatusUnavailable, match="signature does not verify"):
        await server.resolver().resolve(uri, 0)
    assert server.hits[JWKS_URL] == before + 2
    # alg none is never accepted.
    unsigned = jwt.encode(
        token_list(uri, {}), None, algorithm="none", headers={"typ": "statuslist+jwt"}
    )
    server.routes[uri] = httpx.Response(200, text=unsigned)
    with pytest.raises(StatusUnavailable, match="signature does not verify"):
        await server.resolver().resolve(uri, 0)


async def test_untrusted_and_unreachable_lists_are_refused_with_the_reason(
    issuer: Issuer, server: Server
) -> None:
    resolver = server.resolver()
    with pytest.raises(StatusUnavailable, match="not under a trusted issuer"):
        await resolver.resolve("https://elsewhere.example/status/1", 0)
    plain = server.resolver({"http://foreign.example/": JWKS_URL})
    with pytest.raises(StatusUnavailable, match="must be fetched over https"):
        await plain.resolve("http://foreign.example/status/1", 0)
    with pytest.raises(StatusUnavailable, match="answered HTTP 404"):
        await resolver.resolve(BASE + "missing", 0)
    with pytest.raises(StatusUnavailable, match="could not be fetched: ConnectError"):
        await resolver.resolve(BASE + "unreachable", 0)
    server.routes[BASE + "big"] = httpx.Response(200, content=b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(StatusUnavailable, match="larger than"):
        await resolver.resolve(BASE + "big", 0)
    server.routes[BASE + "text"] = httpx.Response(200, text="not a jws")
    with pytest.raises(StatusUnavailable, match="not a compact JWS"):
        await resolver.resolve(BASE + "text", 0)
    server.routes[BASE + "array"] = httpx.Response(200, text=b64url(b"[1]") + ".e30.sig")
    with pytest.raises(StatusUnavailable, match="not a compact JWS"):
        await resolver.resolve(BASE + "array", 0)


@pytest.mark.parametrize(
    ("jwks", "reason"),
    [
        (httpx.Response(200, text="{"), "is not JSON"),
        (httpx.Response(200, json={"keys": "none"}), "has no 'keys' array"),
        (httpx.Response(503), "answered HTTP 503"),
    ],
)
async def test_a_broken_trust_anchor_is_refused(
    issuer: Issuer, server: Server, jwks: httpx.Response, reason: str
) -> None:
    uri = BASE + "4"
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(token_list(uri, {}), "statuslist+jwt")
    )
    server.routes[JWKS_URL] = jwks
    with pytest.raises(StatusUnavailable, match=reason):
        await server.resolver().resolve(uri, 0)


async def test_the_longest_anchor_prefix_wins(server: Server) -> None:
    resolver = server.resolver({BASE: JWKS_URL, BASE + "tenant-b/": "https://b.example/jwks"})
    assert resolver.anchor_for(BASE + "tenant-b/1") == "https://b.example/jwks"
    assert resolver.anchor_for(BASE + "1") == JWKS_URL


async def test_a_resolver_closes_the_client_it_made() -> None:
    resolver = RemoteStatusResolver({})
    await resolver.aclose()
    assert resolver._client.is_closed


async def test_the_list_cache_is_bounded(
    issuer: Issuer, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pavilion.credentials.status.resolver as resolver_module

    monkeypatch.setattr(resolver_module, "CACHE_ENTRIES", 1)
    first, second = BASE + "c1", BASE + "c2"
    for uri in (first, second):
        server.routes[uri] = httpx.Response(
            200, text=issuer.sign(token_list(uri, {1: 1}), "statuslist+jwt")
        )
    resolver = server.resolver()
    assert await resolver.resolve(first, 1) == 1
    assert await resolver.resolve(second, 1) == 1  # evicts the first
    assert await resolver.resolve(first, 1) == 1
    assert server.hits[first] == 2


@pytest.mark.parametrize(
    "uri",
    [
        "https://issuer.example.evil/status/1",  # the anchor's host as a prefix of another
        "https://issuer.example:8443/status/1",  # another port
        "http://issuer.example/status/1",  # another scheme
        "https://issuer.example@evil.example/status/1",  # user information naming another host
        "https://issuer.example/statuses/1",  # a segment that only starts like the anchor's
        "https://issuer.example/status/../admin/1",  # dot segments out of the anchor's path
        "https://issuer.example/status/%2e%2e/admin/1",
        "https://issuer.example/status%2f..%2fadmin/1",  # an encoded slash
        "https://issuer.example:notaport/status/1",
        "issuer.example/status/1",
    ],
)
async def test_an_anchor_trusts_its_origin_and_path_segments_only(
    issuer: Issuer, server: Server, uri: str
) -> None:
    # An anchor written without a trailing slash: startswith() trusted every URL above.
    anchor = "https://issuer.example/status"
    server.routes[uri] = httpx.Response(
        200, text=issuer.sign(token_list(uri, {1: 1}), "statuslist+jwt")
    )
    resolver = server.resolver({anchor: JWKS_URL})
    with pytest.raises(StatusUnavailable, match="not under a trusted issuer"):
        await resolver.resolve(uri, 1)
    assert server.hits[uri] == 0  # refused before anything is fetched


@pytest.mark.parametrize(
    "uri",
    [
        "https://issuer.example.evil/status/1",
        "https://issuer.example.evil.example/1",
        "https://issuer.example@evil.example/1",
        "https://evil.example/https://issuer.example/1",
    ],
)
def test_an_origin_anchor_trusts_no_other_host(uri: str) -> None:
    resolver = RemoteStatusResolver({"https://issuer.example": JWKS_URL})
    with pytest.raises(StatusUnavailable, match="not under a trusted issuer"):
        resolver.anchor_for(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://issuer.example/status",
        "https://issuer.example/status/1",
        "https://ISSUER.example./status/1",  # host case and a trailing dot: the same origin
        "https://issuer.example:443/status/a/b?page=2",
    ],
)
def test_an_anchor_covers_its_own_path_with_or_without_a_trailing_slash(uri: str) -> None:
    for anchor in ("https://issuer.example/status", "https://issuer.example/status/"):
        assert RemoteStatusResolver({anchor: JWKS_URL}).anchor_for(uri) == JWKS_URL
    assert RemoteStatusResolver({"https://issuer.example": JWKS_URL}).anchor_for(uri) == JWKS_URL


def test_an_unusable_anchor_is_refused_when_configured() -> None:
    for anchor in ("https://issuer.example/s?tenant=a", "https://u@issuer.example/", "ftp://x/"):
        with pytest.raises(ValueError, match="trust anchor"):
            RemoteStatusResolver({anchor: JWKS_URL})
