"""Client certificates as identities: the mTLS half of zero trust.

`pavilion serve` verifies a client certificate against the client CA during the handshake
(``serving.server_ssl_context``); this module only says who a verified certificate is. The
settings map a certificate to a tenant and role by the SHA-256 of its SubjectPublicKeyInfo
(``spki-sha256:<hex>``, which survives re-issuance with the same key) or by its subject
(``subject:<RFC 4514 name>``, which survives a new key from the same CA). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pavilion.config.settings import ClientIdentity
from pavilion.errors import AuthenticationFailed, ConfigurationError
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.roles import Role
from pavilion.tenancy.service import Principal


def principal_for(tenant_id: str, role_name: str, principal_id: str, *, where: str) -> Principal:
    """A principal from configuration, refusing unknown roles and a platform admin that does
    not belong to the platform tenant (the rule API tokens follow)."""
    try:
        role = Role(role_name)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ConfigurationError(f"{where}: unknown role {role_name!r} (one of {known})") from None
    if (role is Role.PLATFORM_ADMIN) != (tenant_id == PLATFORM_TENANT_ID):
        raise ConfigurationError(
            f"{where}: platform-admin belongs to the platform tenant, and only to it"
        )
    return Principal(tenant_id, role, principal_id)


@dataclass(frozen=True)
class CertificateFacts:
    """What identifies a certificate: its public key's SHA-256 and its subject."""

    spki_sha256: str
    subject: str


@lru_cache(maxsize=1024)
def certificate_facts(certificate_pem: str) -> CertificateFacts:
    """Parse a PEM certificate once (connections repeat the same few certificates)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except ValueError as exc:
        raise AuthenticationFailed("the client certificate cannot be read") from exc
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertificateFacts(hashlib.sha256(spki).hexdigest(), certificate.subject.rfc4514_string())


class CertificateIdentities:
    """Verified client certificate -> principal, from ``PAVILION_TLS_CLIENT_IDENTITIES``."""

    def __init__(self, mapping: Mapping[str, ClientIdentity]) -> None:
        self._by_spki: dict[str, Principal] = {}
        self._by_subject: dict[str, Principal] = {}
        for key, identity in mapping.items():
            kind, _, value = key.partition(":")
            where = f"PAVILION_TLS_CLIENT_IDENTITIES[{key!r}]"
            ref = "mtls:" + hashlib.sha256(key.encode()).hexdigest()[:16]
            principal = principal_for(identity.tenant, identity.role, ref, where=where)
            (self._by_spki if kind == "spki-sha256" else self._by_subject)[value] = principal

    def __bool__(self) -> bool:
        return bool(self._by_spki or self._by_subject)

    def principal(self, certificate_pem: str) -> Principal | None:
        """Who the certificate is (its key first, then its subject), or None if unmapped."""
        facts = certificate_facts(certificate_pem)
        return self._by_spki.get(facts.spki_sha256) or self._by_subject.get(facts.subject)
