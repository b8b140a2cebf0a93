"""Long-lived httpx.AsyncClients per DP endpoint, shared by every request to it.

Each pool speaks HTTP/2 where the DP offers it (ALPN), keeps connections alive, is bounded
by :class:`PoolConfig`, and carries the provider's TLS settings (its CA bundle, its mTLS
client certificate). Clients are keyed by provider and URL and rebuilt when the provider's
TLS material changes. Tests may hand in one transport for all pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from pavilion.connect.config import PoolConfig
from pavilion.connect.tls import client_context
from pavilion.providers.types import TlsSettings

USER_AGENT = "pavilion-connector/0.2"


@dataclass
class Pool:
    """The clients of one endpoint: shards of at most ``shard_connections`` connections.

    httpcore rescans every connection of a pool on each request event, so one pool of
    hundreds of connections costs CPU per request in proportion; small shards, each request
    taking the least busy one, keep that cost flat.
    """

    clients: list[httpx.AsyncClient]
    fingerprint: str
    in_flight: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.in_flight = [0] * len(self.clients)


class PoolRegistry:
    def __init__(
        self,
        config: PoolConfig,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._transport = transport
        self._pools: dict[tuple[str, str], Pool] = {}
        self._retired: list[httpx.AsyncClient] = []

    def __len__(self) -> int:
        return len(self._pools)

    def pool(self, provider_id: str, url: str, tls: TlsSettings | None) -> Pool:
        key = (provider_id, url)
        fingerprint = tls.fingerprint() if tls is not None else "-"
        pool = self._pools.get(key)
        if pool is not None and pool.fingerprint == fingerprint:
            return pool
        if pool is not None:
            self._retired.extend(pool.clients)
        shards = 1 if self._transport is not None else self._shards()
        context = None if self._transport is not None else client_context(tls)
        pool = Pool([self._build(context, shards) for _ in range(shards)], fingerprint)
        self._pools[key] = pool
        return pool

    def client(self, provider_id: str, url: str, tls: TlsSettings | None) -> httpx.AsyncClient:
        """The endpoint's first client (probes, token requests)."""
        return self.pool(provider_id, url, tls).clients[0]

    @asynccontextmanager
    async def lease(
        self, provider_id: str, url: str, tls: TlsSettings | None
    ) -> AsyncIterator[httpx.AsyncClient]:
        """The endpoint's least busy client for one request."""
        pool = self.pool(provider_id, url, tls)
        shard = min(range(len(pool.clients)), key=pool.in_flight.__getitem__)
        pool.in_flight[shard] += 1
        try:
            yield pool.clients[shard]
        finally:
            pool.in_flight[shard] -= 1

    def _shards(self) -> int:
        config = self._config
        return max(1, math.ceil(config.max_connections / max(config.shard_connections, 1)))

    def _build(self, context: ssl.SSLContext | None, shards: int) -> httpx.AsyncClient:
        if self._transport is not None:
            return httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                headers={"user-agent": USER_AGENT},
            )
        config = self._config
        assert context is not None
        return httpx.AsyncClient(
            http2=config.http2,
            verify=context,
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=math.ceil(config.max_connections / shards),
                max_keepalive_connections=math.ceil(config.max_keepalive_connections / shards),
                keepalive_expiry=config.keepalive_expiry_s,
            ),
            headers={"user-agent": USER_AGENT},
            trust_env=False,
        )

    async def evict(self, provider_id: str, url: str) -> None:
        pool = self._pools.pop((provider_id, url), None)
        if pool is not None:
            for client in pool.clients:
                await client.aclose()

    async def aclose(self) -> None:
        clients = [c for pool in self._pools.values() for c in pool.clients] + self._retired
        self._pools.clear()
        self._retired.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), timeout=5)
