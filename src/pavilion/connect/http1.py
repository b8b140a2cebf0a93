"""DP lookups over HTTP/1.1 with aiohttp: the hot path's DP call at a fifth of httpx's CPU.

Measured on this machine (docs/PERFORMANCE.md): a JSON POST to a local agent costs about
0.2 ms of CPU through aiohttp (its HTTP parser is C) and 1.0 to 1.4 ms through httpx (h11
and h2 are pure Python). With ``PAVILION_PROVIDER_HTTP2=false`` (the default) the lookups
go through these pools; with ``true`` they go through httpx, which speaks HTTP/2 where the
DP offers it. Probes and token requests always use httpx (they are rare).

A pool per DP endpoint (keyed by provider and URL, rebuilt when the provider's TLS material
changes) keeps connections alive within the same limits as the httpx pools, with the
provider's CA bundle and mTLS client certificate. aiohttp's failures are raised as the httpx
exceptions the attempt logic already classifies (timeout, connect, TLS, protocol), with the
ssl error as their cause; a connection opened for the attempt marks the trace as fresh, so a
TLS 1.3 server that refuses the client certificate after the handshake is recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from aiohttp.connector import Connection

from pavilion.connect.config import PoolConfig
from pavilion.connect.endpoints import AttemptTrace
from pavilion.connect.tls import client_context
from pavilion.providers.types import TlsSettings

USER_AGENT = "pavilion-connector/0.2"
_CLOSED_IN_HANDSHAKE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


@dataclass(frozen=True)
class Http1Answer:
    """What the attempt logic reads of an answer (as of ``httpx.Response``)."""

    status_code: int
    content: bytes


class _Response(aiohttp.ClientResponse):
    """Keeps the connection's ssl object: aiohttp releases a small answer's connection before
    the caller sees the response."""

    ssl_object: Any = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        self.ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        return await super().start(connection)


async def _connection_opened(
    _session: aiohttp.ClientSession, context: SimpleNamespace, _params: Any
) -> None:
    trace = context.trace_request_ctx
    if isinstance(trace, AttemptTrace):
        trace.fresh = True


class Http1Pools:
    def __init__(self, config: PoolConfig, *, connect_timeout_s: float) -> None:
        self._config = config
        self._connect_timeout = connect_timeout_s
        self._sessions: dict[tuple[str, str], tuple[str, aiohttp.ClientSession]] = {}
        self._retired: list[aiohttp.ClientSession] = []
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_create_end.append(_connection_opened)
        self._tracing = [tracing]

    def session(self, provider_id: str, url: str, tls: TlsSettings | None) -> aiohttp.ClientSession:
        key = (provider_id, url)
        fingerprint = tls.fingerprint() if tls is not None else "-"
        found = self._sessions.get(key)
        if found is not None and found[0] == fingerprint:
            return found[1]
        if found is not None:
            self._retired.append(found[1])
        context: ssl.SSLContext | bool = (
            client_context(tls) if url.startswith("https://") else False
        )
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=context,
                limit=self._config.max_connections,
                keepalive_timeout=self._config.keepalive_expiry_s,
            ),
            headers={"user-agent": USER_AGENT},
            trust_env=False,
            json_serialize=json.dumps,
            trace_configs=self._tracing,
            response_class=_Response,
        )
        self._sessions[key] = (fingerprint, session)
        return session

    async def post(
        self,
        provider_id: str,
        url: str,
        tls: TlsSettings | None,
        *,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        budget_s: float,
        trace: AttemptTrace,
        on_connection: Callable[[Any], None] | None = None,
    ) -> Http1Answer:
        """POST ``body`` as JSON; failures leave as httpx's exceptions (see the docstring).

        When the request opened a connection, ``on_connection`` gets its ssl object (``None``
        over plain HTTP) before the answer is read.
        """
        session = self.session(provider_id, url, tls)
        timeout = aiohttp.ClientTimeout(
            total=budget_s, sock_connect=min(budget_s, self._connect_timeout)
        )
        try:
            async with session.post(
                url,
                data=json.dumps(body, separators=(",", ":")).encode(),
                headers={"content-type": "application/json", **headers},
                timeout=timeout,
                trace_request_ctx=trace,
                # The body holds a subject's identifiers: never to another host or region.
                allow_redirects=False,
            ) as response:
                if trace.fresh and on_connection is not None:
                    on_connection(getattr(response, "ssl_object", None))
                return Http1Answer(response.status, await response.read())
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(f"no answer within {budget_s:.3f} s") from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise httpx.ConnectError(str(exc)) from exc.certificate_error
        except aiohttp.ClientSSLError as exc:
            raise httpx.ConnectError(str(exc)) from exc.os_error
        except aiohttp.ClientConnectorError as exc:
            if url.startswith("https://") and isinstance(exc.os_error, _CLOSED_IN_HANDSHAKE):
                # The TCP connection was made and closed during the handshake: asyncio reports
                # the server's alert (no common version or cipher, a refused certificate) as a
                # reset, where a blocking handshake would have raised the ssl error.
                handshake = ssl.SSLError(
                    1, "TLS handshake failed: the server closed the connection during it"
                )
                handshake.reason = "server closed the connection during the TLS handshake"
                handshake.library = "SSL"
                raise httpx.ConnectError(str(handshake)) from handshake
            raise httpx.ConnectError(str(exc)) from exc.os_error
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected") from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        finally:
            # A TLS connection opened for this attempt: a TLS 1.3 server that refuses the
            # client certificate closes it after the handshake, before any answer.
            if trace.fresh and url.startswith("https://"):
                trace.fresh_tls = True

    async def aclose(self) -> None:
        sessions = [s for _, s in self._sessions.values()] + self._retired
        self._sessions.clear()
        self._retired.clear()
        for session in sessions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), timeout=5)
