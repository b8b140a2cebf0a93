"""did:web end to end on loopback HTTPS: the connector as a did:web issuer, and did:web holders.

The connector runs with ``PAVILION_DID_WEB=did:web:127.0.0.1%3A<port>`` and serves its own DID
document over HTTPS on that port (a trustme CA, named by ``PAVILION_DID_WEB_CA_FILE``; loopback
allowed by ``PAVILION_DID_WEB_ALLOW_PRIVATE_ADDRESSES``): so the runtime's did:web fetcher is
the one the settings build. Written from the did:web method specification (3.2: the DID
``did:web:host%3Aport`` resolves to ``https://host:port/.well-known/did.json``; the document's
``id`` is the DID) and VC Data Integrity 1.0 (the verification method's controller is the
issuer; it is listed for ``assertionMethod``).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connector_support import Api, connector_api, connector_runtime
from di_support import key_of_multikey, verify_independently
from pavilion.config.settings import Settings
from pavilion.credentials.data_integrity import proofs
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.data_integrity.identity import multikey_of
from pavilion.serving import BackgroundServer
from presentation_support import Holder, envelope_presentation

STUDENT_VC: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}


class LateApp:
    """An ASGI app set after the server is bound (the DID names the server's port)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def connector_server(ca: trustme.CA) -> Iterator[tuple[BackgroundServer, LateApp]]:
    late = LateApp()
    with BackgroundServer(late, ssl_context=_server_context(ca), lifespan="off") as server:
        yield server, late


@pytest.fixture
async def did_api(
    sqlite_settings: Settings,
    agent_app: Any,
    ca: trustme.CA,
    tmp_path: Path,
    connector_server: tuple[BackgroundServer, LateApp],
) -> AsyncIterator[Api]:
    server, late = connector_server
    ca_file = tmp_path / "did-web-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings = sqlite_settings.model_copy(
        update={
            "did_web": f"did:web:127.0.0.1%3A{server.port}",
            "did_web_ca_file": ca_file,
            "did_web_allow_private_addresses": True,
        }
    )
    async with connector_runtime(settings, agent_app) as rt, connector_api(rt) as api:
        late.app = api.app
        yield api


def _client(ca: trustme.CA) -> httpx.AsyncClient:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return httpx.AsyncClient(verify=context, timeout=5)


async def issue(api: Api, **options: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/credentials/issue",
        json={"credential": options.pop("credential", STUDENT_VC), "options": options},
        headers=api.auth("tenant-admin"),
    )
    assert response.status_code == 201, response.text
    secured: dict[str, Any] = response.json()["verifiableCredential"]
    return secured


async def test_the_connector_serves_its_did_document_at_the_did_web_url(
    did_api: Api, ca: trustme.CA
) -> None:
    did = did_api.rt.settings.did_web
    host = did.removeprefix("did:web:").replace("%3A", ":")
    async with _client(ca) as client:
        response = await client.get(f"https://{host}/.well-known/did.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/did+json"
    document = response.json()
    assert document["id"] == did
    jwks = (await did_api.client.get("/.well-known/jwks.json")).json()["keys"]
    methods = {m["id"]: m for m in document["verificationMethod"]}
    assert set(methods) == {f"{did}#{k['kid']}" for k in jwks}
    assert document["assertionMethod"] == list(methods)
    for jwk in jwks:
        method = methods[f"{did}#{jwk['kid']}"]
        assert (method["type"], method["controller"]) == ("Multikey", did)
        assert method["publicKeyMultibase"] == multikey_of(jwk)


@pytest.mark.parametrize("suite", ["eddsa-rdfc-2022", "ecdsa-rdfc-2019"])
async def test_proofs_name_the_did_web_and_verify_from_the_published_document(
    did_api: Api, ca: trustme.CA, suite: str
) -> None:
    did = did_api.rt.settings.did_web
    secured = await issue(did_api, cryptosuite=suite)
    assert secured["issuer"] == did
    method_id = secured["proof"]["verificationMethod"]
    assert method_id.startswith(f"{did}#")
    # an independent verifier: resolve the DID over HTTPS, take the key, check the proof
    url = "https://" + did.removeprefix("did:web:").replace("%3A", ":") + "/.well-known/did.json"
    async with _client(ca) as client:
        document = (await client.get(url)).json()
    method = next(m for m in document["verificationMethod"] if m["id"] == method_id)
    assert method_id in document["assertionMethod"]
    verify_independently(secured, key_of_multikey(method["publicKeyMultibase"]))
    # the runtime's own did:web fetcher (built from the settings) resolves it over HTTPS too
    assert did_api.rt.did_web is not None
    resolved = await proofs.verify_proof(
        secured,
        Resolver(did_web=did_api.rt.did_web),
        now=did_api.rt.clock(),
        controller=did,
    )
    assert resolved.verification_method == method_id
    # and /credentials/verify accepts it (the connector's own document, from its keystore)
    response = await did_api.client.post(
        "/credentials/verify",
        json={"verifiableCredential": secured},
        headers=did_api.auth("broker"),
    )
    assert response.json()["verified"] is True, response.text


async def test_did_web_holders_are_resolved_by_the_runtime_fetcher(
    did_api: Api, ca: trustme.CA
) -> None:
    """A vp+jwt whose kid is a did:web URL: the holder's document is fetched over HTTPS by the
    fetcher the runtime built, its key checks the presentation, the credential names the
    holder as its subject."""
    holder = Holder.p256()
    documents: dict[str, Any] = {}

    async def serve(request: Any) -> JSONResponse:
        return JSONResponse(documents["holder"])

    app = Starlette(routes=[Route("/.well-known/did.json", serve)])
    with BackgroundServer(app, ssl_context=_server_context(ca), lifespan="off") as server:
        did = f"did:web:127.0.0.1%3A{server.port}"
        documents["holder"] = {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "verificationMethod": [
                {
                    "id": f"{did}#key-1",
                    "type": "JsonWebKey",
                    "controller": did,
                    "publicKeyJwk": holder.public_jwk(),
                }
            ],
            "authentication": ["#key-1"],
        }
        credential = {
            **STUDENT_VC,
            "credentialSubject": {"id": did, **STUDENT_VC["credentialSubject"]},
        }
        envelope = await issue(did_api, format="vc2_jose", credential=credential)
        token = holder.present([envelope], holder=did, header={"kid": f"{did}#key-1"})
        response = await did_api.client.post(
            "/presentations/verify",
            json={
                "verifiablePresentation": envelope_presentation(token),
                "options": {"domain": "https://verifier.example", "challenge": "n-0S6_WzA2Mj"},
            },
            headers=did_api.auth("broker"),
        )
    body = response.json()
    assert response.status_code == 200, body
    assert body["verified"] is True, body
    assert body["results"]["holder"] == {"valid": True, "input": did}


async def test_a_did_with_a_path_is_served_at_that_path(
    sqlite_settings: Settings, agent_app: Any
) -> None:
    settings = sqlite_settings.model_copy(
        update={"did_web": "did:web:connector.example:issuers:acme"}
    )
    async with connector_runtime(settings, agent_app) as rt, connector_api(rt) as api:
        response = await api.client.get("/issuers/acme/did.json")
        assert response.status_code == 200
        assert response.json()["id"] == "did:web:connector.example:issuers:acme"
        assert (await api.client.get("/.well-known/did.json")).status_code == 200
