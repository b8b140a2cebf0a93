"""How the connector authenticates to one DP and what TLS it uses: opened settings, in memory.

Built by the provider registry from the stored settings and the opened secrets; the secret
members never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


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
