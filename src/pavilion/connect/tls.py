"""TLS for DP connections: verification always on, TLS 1.2 at least and 1.3 preferred.

A provider may pin its own CA bundle (then only those roots are trusted for it) and give a
client certificate for mutual TLS. ``ssl`` loads certificate chains from files only, so the
client key is handed over through an anonymous in-memory file
(:func:`pavilion.serving.load_chain_from_memory`) that never touches a disk.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from typing import Any

import certifi

from pavilion.providers.types import TlsSettings
from pavilion.serving import load_chain_from_memory

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def client_context(settings: TlsSettings | None) -> ssl.SSLContext:
    """A verifying client context for one provider."""
    if settings is not None and settings.ca_certificates:
        context = ssl.create_default_context(cadata=settings.ca_certificates)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    context.minimum_version = _VERSIONS[settings.min_version if settings else "1.2"]
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    # create_default_context already sets CERT_REQUIRED and hostname checks; say so anyway.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if settings is not None and settings.client_certificate and settings.client_private_key:
        load_chain_from_memory(
            context,
            settings.client_certificate,
            settings.client_private_key,
            what="the provider's TLS client certificate",
        )
    return context


@dataclass(frozen=True)
class TlsParameters:
    """What one TLS session negotiated: no personal data, only protocol facts."""

    version: str
    cipher: str
    alpn: str
    peer_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tls_version": self.version,
            "cipher": self.cipher,
            "alpn": self.alpn,
            "peer_certificate_sha256": self.peer_sha256,
        }


def session_parameters(ssl_object: Any) -> TlsParameters | None:
    """Read the negotiated parameters off an ``ssl.SSLObject`` (or None if not TLS)."""
    if ssl_object is None:
        return None
    peer = ssl_object.getpeercert(binary_form=True) or b""
    cipher = ssl_object.cipher()
    return TlsParameters(
        version=str(ssl_object.version()),
        cipher=str(cipher[0]) if cipher else "",
        alpn=str(ssl_object.selected_alpn_protocol() or "http/1.1"),
        peer_sha256=hashlib.sha256(peer).hexdigest(),
    )


def tls_failure(exc: BaseException) -> tuple[str, str] | None:
    """('tls_verification_failed' | 'tls_client_certificate_refused' | 'tls_error', reason)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return "tls_verification_failed", str(current.verify_message or current.reason)
        if isinstance(current, ssl.SSLError):
            reason = str(current.reason or current)
            refused = (
                "CERTIFICATE_REQUIRED",
                "BAD_CERTIFICATE",
                "UNKNOWN_CA",
                "CERTIFICATE_UNKNOWN",
                "HANDSHAKE_FAILURE",
            )
            if any(marker in reason.upper() for marker in refused):
                return "tls_client_certificate_refused", reason
            return "tls_error", reason
        current = current.__cause__ or current.__context__
    return None
