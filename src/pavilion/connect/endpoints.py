"""The connector's view of each DP endpoint it calls: health, TLS seen, events and metrics.

:class:`EndpointBook` holds one :class:`EndpointState` per provider and endpoint URL (shared
by every lookup of the process), publishes health changes as metrics and
:class:`~pavilion.connect.events.ConnectionEvent` objects, and traces each connection httpcore
opens (TLS version and ALPN, or plain HTTP) so that a change of TLS parameters is reported once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pavilion.connect import metrics
from pavilion.connect.config import ConnectConfig
from pavilion.connect.events import ConnectionEvent, EventSink, endpoint_label, log_event
from pavilion.connect.health import EndpointHealth, HealthChange
from pavilion.connect.tls import TlsParameters, session_parameters
from pavilion.providers.types import Endpoint, ProviderConnection


@dataclass
class EndpointState:
    """The connector's view of one endpoint of one provider."""

    key: str
    provider: ProviderConnection
    endpoint: Endpoint
    label: str
    health: EndpointHealth
    tls: TlsParameters | None = None
    plain_seen: bool = False
    #: Admission: at most the pool's connection limit in flight, the rest wait here, cheaply
    #: (httpcore's own queue rescans every connection on every event: quadratic under load).
    slots: asyncio.Semaphore | None = None

    def labels(self) -> tuple[str, str, str]:
        return (self.provider.id, self.endpoint.region, self.label)


@dataclass
class AttemptTrace:
    """What httpcore's trace told about one attempt's connection."""

    fresh_tls: bool = False
    #: A connection was opened for this attempt (set by the aiohttp pools' trace hook).
    fresh: bool = False


class EndpointBook:
    """Every endpoint this process has called, by provider and URL; publishes what changes."""

    def __init__(
        self,
        config: ConnectConfig,
        events: EventSink,
        auth_method: Callable[[ProviderConnection], str],
    ) -> None:
        self._config = config
        self._events = events
        self._auth_method = auth_method
        self.states: dict[str, EndpointState] = {}

    def state(self, provider: ProviderConnection, endpoint: Endpoint) -> EndpointState:
        key = f"{provider.id}|{endpoint.url}"
        state = self.states.get(key)
        if state is None:
            state = EndpointState(
                key, provider, endpoint, endpoint_label(endpoint.url), EndpointHealth(self._config)
            )
            self.states[key] = state
            metrics.BREAKER_STATE.labels(*state.labels()).set(0)
            metrics.EJECTED.labels(*state.labels()).set(0)
        elif state.provider is not provider:
            state.provider, state.endpoint = provider, endpoint
        return state

    def find(self, provider: ProviderConnection, endpoint: Endpoint) -> EndpointState | None:
        """The state of an endpoint this node has called or warmed up, else ``None``."""
        return self.states.get(f"{provider.id}|{endpoint.url}")

    def publish(self, state: EndpointState, changes: Sequence[HealthChange]) -> None:
        for change in changes:
            labels = state.labels()
            if change.kind == "endpoint_ejected":
                metrics.EJECTED.labels(*labels).set(1)
                metrics.EJECTIONS.labels(*labels).inc()
            elif change.kind == "endpoint_returned":
                metrics.EJECTED.labels(*labels).set(0)
            elif change.kind.startswith("breaker_"):
                metrics.BREAKER_STATE.labels(*labels).set(metrics.BREAKER_VALUE[change.data["to"]])
            elif change.kind in ("probe_healthy", "probe_unhealthy"):
                metrics.HEALTHY.labels(*labels).set(1 if change.kind == "probe_healthy" else 0)
            self.emit(state.provider, change.kind, state, data=change.data)

    def emit(
        self,
        provider: ProviderConnection,
        kind: str,
        state: EndpointState | None = None,
        *,
        data: dict[str, Any],
    ) -> None:
        event = ConnectionEvent(
            tenant_id=provider.tenant_id,
            provider_id=provider.id,
            kind=kind,
            region=state.endpoint.region if state else None,
            endpoint=state.label if state else None,
            data=data,
        )
        log_event(event)
        self._events.emit(event)

    def tracer(
        self, state: EndpointState, attempt: AttemptTrace | None = None
    ) -> Callable[[str, dict[str, Any]], Any]:
        """httpcore's trace hook: reports each connection the attempt opens."""

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name == "connection.start_tls.complete":
                stream = info.get("return_value")
                self.opened(
                    state,
                    stream.get_extra_info("ssl_object") if stream is not None else None,
                    attempt,
                    tls=True,
                )
            elif name == "connection.connect_tcp.complete" and state.endpoint.url.startswith(
                "http://"
            ):
                self.opened(state, None, attempt, tls=False)

        return trace

    def opened(
        self, state: EndpointState, ssl_object: Any, attempt: AttemptTrace | None, *, tls: bool
    ) -> None:
        """A new connection to the endpoint: count it; report its TLS parameters on change."""
        if not tls:
            metrics.CONNECTIONS_OPENED.labels(*state.labels(), "none", "http/1.1").inc()
            if not state.plain_seen:
                state.plain_seen = True
                self.emit(
                    state.provider,
                    "connection_opened",
                    state,
                    data={"tls_version": "none", "auth_method": self._auth_method(state.provider)},
                )
            return
        if attempt is not None:
            attempt.fresh_tls = True
        params = session_parameters(ssl_object)
        if params is None:
            return
        metrics.CONNECTIONS_OPENED.labels(*state.labels(), params.version, params.alpn).inc()
        if params != state.tls:
            state.tls = params
            self.emit(
                state.provider,
                "tls_established",
                state,
                data=params.as_dict() | {"auth_method": self._auth_method(state.provider)},
            )
