"""Verification at the I/O edge: the trust context from the database, then the verifier.

``verify`` builds the trust context (the keystore's JWKS, the tenant's roots, accreditations
from the database) and runs the pure checks of :mod:`pavilion.credentials.verifier`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from cryptography import x509

from pavilion.credentials import verifier
from pavilion.credentials.issuing import CredentialKeystore
from pavilion.credentials.report import CheckName, IntegrityReport, failed
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.trust_roots import TrustRoots


class CredentialVerifier:
    """Verifies credentials and presentations against a tenant's trust material."""

    def __init__(
        self,
        keystore: CredentialKeystore,
        trust: TrustRoots,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._keystore = keystore
        self._trust = trust
        self._clock = clock

    async def trust_context(
        self,
        tenant_id: str,
        status_lookup: verifier.StatusLookup | None = None,
        *,
        extra_anchors: Sequence[x509.Certificate] = (),
    ) -> verifier.TrustContext:
        async def accreditation(key_id: str) -> str | None:
            return await self._trust.accreditation_for_key(tenant_id, key_id)

        return verifier.TrustContext.from_jwks(
            self._keystore.public_jwks("credential-signing"),
            anchors=[*(await self._trust.anchors(tenant_id)), *extra_anchors],
            accreditation=accreditation,
            status=status_lookup,
        )

    async def verify(
        self,
        tenant_id: str,
        token: str,
        *,
        status_lookup: verifier.StatusLookup | None = None,
        presentation: bool = False,
        audience: str | None = None,
        nonce: str | None = None,
        max_age: timedelta | None = None,
        expected_format: CredentialFormat | None = None,
    ) -> IntegrityReport:
        trust = await self.trust_context(tenant_id, status_lookup)
        options = verifier.VerifyOptions(
            now=self._clock(), audience=audience, nonce=nonce, max_age=max_age
        )
        report = await verifier.verify_credential(token, trust, options, presentation=presentation)
        if expected_format is not None and report.format not in (
            expected_format.value,
            "unknown",
        ):
            report.add(
                failed(
                    CheckName.SCHEMA,
                    "media_type_mismatch",
                    f"the envelope says {expected_format.value} but the credential is "
                    f"{report.format}",
                )
            )
        return report
