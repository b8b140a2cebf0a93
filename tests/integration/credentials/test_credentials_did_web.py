"""did:web over real HTTPS on loopback: a DID document served by uvicorn with a trustme CA,
fetched by the connector's did:web fetcher, and a Data Integrity proof verified with it."""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from credentials_support import eddsa, es256
from pavilion.credentials import jsonld
from pavilion.credentials.data_integrity import multikey, proofs
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.data_integrity.did_web import (
    MAX_DOCUMENT_BYTES,
    HttpDidWebFetcher,
    is_public,
)
from pavilion.credentials.report import CheckFailed
from pavilion.keystore.software_signer import SoftwareSigner
from pavilion.serving import BackgroundServer

NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: Requests served per path (the cache test counts them).
SERVED: Counter[str] = Counter()


def _document(did: str, signer: SoftwareSigner) -> dict[str, Any]:
    key = multikey.encode_public_key(multikey.public_key_from_jwk(signer.public_jwk()))
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [
            {"id": f"{did}#key-1", "type": "Multikey", "controller": did, "publicKeyMultibase": key}
        ],
        "assertionMethod": ["#key-1"],
    }


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def signers() -> dict[str, SoftwareSigner]:
    return {"root": eddsa(), "alice": es256()}


@pytest.fixture(scope="module")
def did_host(ca: trustme.CA, signers: dict[str, SoftwareSigner]) -> Iterator[str]:
    """``127.0.0.1%3A<port>``: the did:web host part of a loopback HTTPS server."""
    documents: dict[str, dict[str, Any]] = {}

    async def document(request: Request) -> Response:
        found = documents.get(request.url.path)
        return JSONResponse(found) if found else PlainTextResponse("no", status_code=404)

    async def garbage(request: Request) -> Response:
        return PlainTextResponse("not json")

    async def huge(request: Request) -> Response:
        return PlainTextResponse("x" * (MAX_DOCUMENT_BYTES + 1))

    async def moved(request: Request) -> Response:
        return RedirectResponse("/new-home/did.json", status_code=301)

    async def elsewhere(request: Request) -> Response:
        return RedirectResponse("https://localhost:1/did.json", status_code=302)

    async def loop(request: Request) -> Response:
        return RedirectResponse("/loop/did.json", status_code=307)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return PlainTextResponse("late")

    async def counted(request: Request) -> Response:
        SERVED[request.url.path] += 1
        return JSONResponse(_document(f"did:web:{host}:counted", signers["alice"]))

    app = Starlette(
        routes=[
            Route("/garbage/did.json", garbage),
            Route("/huge/did.json", huge),
            Route("/moved/did.json", moved),
            Route("/elsewhere/did.json", elsewhere),
            Route("/loop/did.json", loop),
            Route("/slow/did.json", slow),
            Route("/counted/did.json", counted),
            Route("/{path:path}", document),
        ]
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with BackgroundServer(app, ssl_context=context, lifespan="off") as server:
        host = f"127.0.0.1%3A{server.port}"
        documents["/.well-known/did.json"] = _document(f"did:web:{host}", signers["root"])
        documents["/users/alice/did.json"] = _document(
            f"did:web:{host}:users:alice", signers["alice"]
        )
        # the document of did:web:<host>:moved, moved within the host (a 301 points at it)
        documents["/new-home/did.json"] = _document(f"did:web:{host}:moved", signers["alice"])
        yield host


async def _issue(did: str, signer: SoftwareSigner) -> dict[str, Any]:
    credential = {
        "@context": [jsonld.VC_V2, jsonld.EXAMPLES_V2],
        "type": ["VerifiableCredential", "ExampleCredential"],
        "issuer": did,
        "credentialSubject": {"id": "did:example:1", "example": "yes"},
    }
    return await proofs.add_proof(
        credential, signer, verification_method=f"{did}#key-1", created=NOW
    )


def fetcher(ca: trustme.CA, **kwargs: Any) -> HttpDidWebFetcher:
    """The connector's fetcher trusting the test CA, allowed to reach loopback."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return HttpDidWebFetcher(verify=context, allow_private_addresses=True, **kwargs)


async def test_did_web_documents_are_fetched_over_https_and_verify_proofs(
    ca: trustme.CA, signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    fetch = fetcher(ca)
    try:
        resolver = Resolver(did_web=fetch)
        for path, name in (("", "root"), (":users:alice", "alice"), (":moved", "alice")):
            did = f"did:web:{did_host}{path}"
            secured = await _issue(did, signers[name])
            result = await proofs.verify_proof(secured, resolver, now=NOW, controller=did)
            assert result.verification_method == f"{did}#key-1"
            assert result.cryptosuite == proofs.CRYPTOSUITES[signers[name].algorithm]
        # a DID whose document is missing, one not JSON, one too large, one redirected away
        for path, code in (
            (":users:bob", "did_web_unreachable"),
            (":garbage", "bad_controller_document"),
            (":huge", "bad_controller_document"),
            (":elsewhere", "did_web_redirect"),
            (":loop", "did_web_redirect"),
        ):
            secured = await _issue(f"did:web:{did_host}{path}", signers["alice"])
            with pytest.raises(CheckFailed) as caught:
                await proofs.verify_proof(secured, resolver, now=NOW)
            assert caught.value.code == code, (path, caught.value.reason)
    finally:
        await fetch.aclose()


async def test_documents_are_cached_and_slow_servers_time_out(
    ca: trustme.CA, signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    fetch = fetcher(ca, timeout_seconds=0.5)
    try:
        resolver = Resolver(did_web=fetch)
        secured = await _issue(f"did:web:{did_host}:slow", signers["alice"])
        with pytest.raises(CheckFailed, match="timed out"):
            await proofs.verify_proof(secured, resolver, now=NOW)
        did = f"did:web:{did_host}:counted"
        secured = await _issue(did, signers["alice"])
        before = SERVED["/counted/did.json"]
        for _ in range(3):
            await proofs.verify_proof(secured, resolver, now=NOW, controller=did)
        assert SERVED["/counted/did.json"] == before + 1
    finally:
        await fetch.aclose()


async def test_a_server_the_client_does_not_trust_is_unreachable(
    signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    fetch = HttpDidWebFetcher(allow_private_addresses=True)  # the system CAs: not our test CA
    try:
        secured = await _issue(f"did:web:{did_host}", signers["root"])
        with pytest.raises(CheckFailed) as caught:
            await proofs.verify_proof(secured, Resolver(did_web=fetch), now=NOW)
        assert caught.value.code == "did_web_unreachable"
    finally:
        await fetch.aclose()


async def test_private_addresses_are_refused_unless_allowed(
    ca: trustme.CA, signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    """A credential names the host the connector contacts: by default only public ones."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    fetch = HttpDidWebFetcher(verify=context)
    try:
        secured = await _issue(f"did:web:{did_host}", signers["root"])
        with pytest.raises(CheckFailed) as caught:
            await proofs.verify_proof(secured, Resolver(did_web=fetch), now=NOW)
        assert caught.value.code == "did_web_private_address"
        assert "127.0.0.1" in caught.value.reason
    finally:
        await fetch.aclose()


async def test_the_connection_goes_to_the_checked_address() -> None:
    """One lookup decides: a name resolving to a public address is fetched from that address
    (a rebinding DNS answer later cannot redirect it), with the host as SNI and Host."""
    seen: list[tuple[str, str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sni = request.extensions.get("sni_hostname")
        seen.append((str(request.url), request.headers["host"], sni))
        return httpx.Response(200, json={"id": "did:web:issuer.example"})

    async def resolver(host: str, port: int) -> list[str]:
        return {"issuer.example": ["93.184.215.14"], "inward.example": ["10.0.0.5"]}[host]

    fetch = HttpDidWebFetcher(resolver=resolver, transport=httpx.MockTransport(answer))
    try:
        assert await fetch("https://issuer.example/.well-known/did.json") == {
            "id": "did:web:issuer.example"
        }
        assert seen == [
            ("https://93.184.215.14/.well-known/did.json", "issuer.example", "issuer.example")
        ]
        with pytest.raises(CheckFailed, match="non-public address"):
            await fetch("https://inward.example/.well-known/did.json")
        with pytest.raises(CheckFailed, match="https only"):
            await fetch("http://issuer.example/.well-known/did.json")
    finally:
        await fetch.aclose()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public
