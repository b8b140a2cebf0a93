"""What the registry hands out about a provider: pure values, held in memory only.

``ProviderConnection`` is what the connector needs to call a DP: its endpoints per region, and
how to authenticate and what TLS to use (opened settings). The registry
(:mod:`pavilion.providers.service`) builds it from the stored settings and the opened secrets;
``connect/`` consumes it. The secret members never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TlsSettings:
    ca_certificates: str | None = None
    client_certificate: str | None = None
    client_private_key: str | None = field(default=None, repr=False)
    min_version: str = "1.2"

    def fingerprint(self) -> str:
        """Changes whenever any of the TLS material changes (so pools are rebuilt)."""
        material = "|".join(
            [
                self.ca_certificates or "",
                self.client_certificate or "",
                self.client_private_key or "",
                self.min_version,
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DpAuthSettings:
    """``method`` is api_key, none, oauth2_client_credentials, private_key_jwt or mtls."""

    method: str
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    audience: str | None = None
    key_id: str | None = None
    algorithm: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    assertion_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Endpoint:
    region: str
    jurisdiction: str
    url: str
    weight: float = 1.0
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderConnection:
    """What the connector needs to call a provider; holds the opened secret, in memory only."""

    id: str
    name: str
    claim_types: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    auth_type: str
    api_key: str | None = field(repr=False)
    record_schema: dict[str, Any]
    tenant_id: str = ""
    auth: DpAuthSettings | None = None
    tls: TlsSettings | None = None
