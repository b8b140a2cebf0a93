"""Connection events: what the audit log and the logs learn about DP connections.

Events carry ids, regions, endpoint host:port, TLS parameters, auth method names, counts and
durations: never identifiers, records, keys or tokens. :class:`EventSink` is the narrow
interface the client writes to; :class:`MemorySink` is its in-process fake, and
``connect.audit.AuditLogSink`` writes them to the tenant's audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from pavilion.observability.logging import get_logger

log = get_logger("pavilion.connect")


@dataclass(frozen=True)
class ConnectionEvent:
    tenant_id: str
    provider_id: str
    kind: str
    region: str | None = None
    endpoint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_audit_event(self, at: str) -> dict[str, Any]:
        """The leaf the audit log commits to."""
        return {
            "kind": "connection",
            "event": self.kind,
            "provider_id": self.provider_id,
            "region": self.region,
            "endpoint": self.endpoint,
            **{k: v for k, v in self.data.items() if k not in {"kind", "event"}},
            "at": at,
        }


class EventSink(Protocol):
    def emit(self, event: ConnectionEvent) -> None: ...


class NullSink:
    def emit(self, event: ConnectionEvent) -> None:
        return None


class MemorySink:
    """Keeps events in a list (tests, and the CLI's status view)."""

    def __init__(self) -> None:
        self.events: list[ConnectionEvent] = []

    def emit(self, event: ConnectionEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def endpoint_label(url: str) -> str:
    """``host:port`` of an endpoint URL: what metrics, logs and the audit log name it by."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log_event(event: ConnectionEvent) -> None:
    level = "warning" if event.kind in WARNING_KINDS else "info"
    getattr(log, level)(
        "dp_connection",
        connection_event=event.kind,
        provider_id=event.provider_id,
        region=event.region,
        endpoint=event.endpoint,
        **{k: v for k, v in event.data.items() if k not in {"event", "kind"}},
    )


WARNING_KINDS = frozenset(
    {
        "endpoint_ejected",
        "breaker_open",
        "probe_unhealthy",
        "failover",
        "tls_verification_failed",
        "tls_client_certificate_refused",
        "auth_token_failed",
        "residency_prevented_failover",
    }
)
