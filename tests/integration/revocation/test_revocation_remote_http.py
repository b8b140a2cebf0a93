"""A verifier resolves another connector's status lists over real HTTP (uvicorn on loopback),
trusting them only through the issuer's JWKS configured as a trust anchor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

from connector_support import provider_client_for
from pavilion.api.app import create_app
from pavilion.config.settings import Settings
from pavilion.credentials.status.resolver import RemoteStatusResolver, StatusUnavailable
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.runtime import Runtime, build_runtime
from pavilion.serving import bind_socket, socket_url


@asynccontextmanager
async def serving_issuer(settings: Settings, agent_app: Any) -> AsyncIterator[tuple[str, Runtime]]:
    """A whole connector under uvicorn on a loopback port, publishing at its real URL."""
    sock = bind_socket()
    url = socket_url(sock)
    issuer = build_runtime(
        settings.model_copy(update={"public_url": url, "issuer_id": url}),
        provider_client=provider_client_for(agent_app),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(issuer, owns_runtime=False), log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        yield url, issuer
    finally:
        server.should_exit = True
        await task
        sock.close()
        await issuer.aclose()


async def test_foreign_lists_resolve_over_http_only_when_anchored(
    settings: Settings, agent_app: Any
) -> None:
    async with serving_issuer(settings, agent_app) as (url, issuer):
        tenant = (await issuer.tenancy.create_tenant("issuing-tenant")).id
        revoked, suspended, valid = [await issuer.status_lists.reserve(tenant) for _ in range(3)]
        bitstring = await issuer.status_lists.reserve(tenant, "bitstring")
        ids = {}
        async with issuer.db.transaction(tenant) as session:
            for name, reservation in (
                ("revoked", revoked),
                ("suspended", suspended),
                ("valid", valid),
                ("bitstring", bitstring),
            ):
                ids[name] = str(uuid.uuid4())
                await issuer.status_lists.bind(session, tenant, reservation, ids[name])
        for name, action in (
            ("revoked", "revoke"),
            ("suspended", "suspend"),
            ("bitstring", "revoke"),
        ):
            await issuer.status_lists.change_status(tenant, ids[name], action, actor="test")

        # The verifier: another node, its own lists elsewhere, the issuer's JWKS as its anchor.
        remote = RemoteStatusResolver({f"{url}/status/v1/": f"{url}/.well-known/jwks.json"})
        verifier = StatusListService(
            issuer.db,
            issuer.keystore,
            issuer.audit,
            StatusListConfig(
                base_url="https://verifier.example", issuer="https://verifier.example"
            ),
            remote=remote,
        )
        uri = revoked.lists[0].uri
        assert uri.startswith(url)
        assert await verifier.resolve_status(uri, revoked.idx) == 1
        assert await verifier.resolve_status(uri, suspended.idx) == 2
        assert await verifier.resolve_status(uri, valid.idx) == 0
        revocation, suspension = (item.uri for item in bitstring.lists)
        assert await verifier.resolve_status(revocation, bitstring.idx) == 1
        assert await verifier.resolve_status(suspension, bitstring.idx) == 0

        untrusted = StatusListService(
            issuer.db,
            issuer.keystore,
            issuer.audit,
            StatusListConfig(
                base_url="https://verifier.example", issuer="https://verifier.example"
            ),
        )
        with pytest.raises(StatusUnavailable, match="not under a trusted issuer"):
            await untrusted.resolve_status(uri, revoked.idx)
        # A local-looking URL that names no list of ours is refused, not guessed.
        with pytest.raises(StatusUnavailable, match="does not exist"):
            await verifier.resolve_status("https://verifier.example/status/v1/token/nope", 0)
        with pytest.raises(StatusUnavailable, match="does not exist"):
            await issuer.status_lists.resolve_status(f"{url}/status/v1/token/{'0' * 64}", 0)
        with pytest.raises(StatusUnavailable, match="outside the status list"):
            await issuer.status_lists.resolve_status(uri, 10_000_000)
        await verifier.aclose()
