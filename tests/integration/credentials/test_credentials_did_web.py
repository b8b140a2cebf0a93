"""did:web over real HTTPS on loopback: a DID document served by uvicorn with a trustme CA,
fetched by the connector's did:web fetcher, and a Data Integrity proof verified with it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from credentials_support import eddsa, es256
from pavilion.credentials import jsonld
from pavilion.credentials.data_integrity import multikey, proofs
from pavilion.credentials.data_integrity.did import HttpDidWebFetcher, Resolver
from pavilion.credentials.report import CheckFailed
from pavilion.keystore.software_signer import SoftwareSigner
from pavilion.serving import BackgroundServer

NOW = datetime(2026, 6, 1, tzinfo=UTC)


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

    app = Starlette(
        routes=[
            Route("/garbage/did.json", garbage),
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


async def test_did_web_documents_are_fetched_over_https_and_verify_proofs(
    ca: trustme.CA, signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with httpx.AsyncClient(
        verify=client_context, timeout=5, follow_redirects=False
    ) as client:
        resolver = Resolver(did_web=HttpDidWebFetcher(client))
        for path, name in (("", "root"), (":users:alice", "alice")):
            did = f"did:web:{did_host}{path}"
            secured = await _issue(did, signers[name])
            result = await proofs.verify_proof(secured, resolver, now=NOW, controller=did)
            assert result.verification_method == f"{did}#key-1"
            assert result.cryptosuite == proofs.CRYPTOSUITES[signers[name].algorithm]
        # a DID whose document is missing, and one whose document is not JSON
        for path, code in (
            (":users:bob", "did_web_unreachable"),
            (":garbage", "bad_controller_document"),
        ):
            secured = await _issue(f"did:web:{did_host}{path}", signers["alice"])
            with pytest.raises(CheckFailed) as caught:
                await proofs.verify_proof(secured, resolver, now=NOW)
            assert caught.value.code == code


async def test_a_server_the_client_does_not_trust_is_unreachable(
    signers: dict[str, SoftwareSigner], did_host: str
) -> None:
    async with httpx.AsyncClient(timeout=5) as client:  # the system CAs: not our test CA
        resolver = Resolver(did_web=HttpDidWebFetcher(client))
        secured = await _issue(f"did:web:{did_host}", signers["root"])
        with pytest.raises(CheckFailed) as caught:
            await proofs.verify_proof(secured, resolver, now=NOW)
        assert caught.value.code == "did_web_unreachable"
