"""Verification at the I/O edge: the trust context from the database, then the verifier.

``verify`` builds the trust context (the keystore's JWKS, the tenant's roots, accreditations
from the database, and a resolver of Data Integrity verification methods) and runs the pure
checks of :mod:`pavilion.credentials.verifier`; ``verify_embedded`` does the same for a
credential with an embedded Data Integrity proof, and ``verify_di_presentation`` for a
presentation secured with one.
``verify_vp_jwt`` checks a VC-JOSE-COSE presentation (:mod:`pavilion.credentials.presentations`:
the holder's key by did:key, or did:web when a fetcher is configured), then each enveloped
credential in it as ``verify`` does, and whether each belongs to the holder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from pavilion.credentials import presentations, vc_api, verifier
from pavilion.credentials.data_integrity.did import DidWebFetcher, Resolver
from pavilion.credentials.data_integrity.identity import IssuerDid
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
        did_web: DidWebFetcher | None = None,
        issuer_did: IssuerDid | None = None,
    ) -> None:
        self._keystore = keystore
        self._trust = trust
        self._clock = clock
        self._did_web = did_web
        self._issuer_did = issuer_did or IssuerDid()
        self._holders = Resolver(did_web=did_web)

    def resolver(self) -> Resolver:
        """Verification methods: did:key, did:web through the fetcher, and this connector's
        own did:web document from the keystore (never fetched from itself)."""
        jwks = self._keystore.public_jwks("credential-signing")
        own = self._issuer_did.document(jwks)
        controllers = {own["id"]: own} if own is not None else {}
        return Resolver(controllers=controllers, did_web=self._did_web)

    async def verify_vp_jwt(
        self,
        tenant_id: str,
        token: str,
        *,
        audience: str,
        nonce: str,
        status_lookup: verifier.StatusLookup | None = None,
        max_age: timedelta | None = None,
    ) -> tuple[presentations.VerifiedPresentation, list[tuple[str, IntegrityReport]]]:
        """The presentation's checks, and each credential's (path, report) with its binding.

        A credential item whose envelope names no accepted media type raises InvalidRequest
        (a 422 naming it), as on ``/credentials/verify``.
        """
        expect = presentations.Expectations(audience=audience, nonce=nonce, now=self._clock())
        presented = await presentations.verify_vp_jwt(token, self._holders, expect)
        return presented, await self._presented(tenant_id, presented, status_lookup, max_age)

    async def verify_di_presentation(
        self,
        tenant_id: str,
        document: Mapping[str, Any],
        *,
        audience: str,
        nonce: str,
        status_lookup: verifier.StatusLookup | None = None,
        max_age: timedelta | None = None,
    ) -> tuple[presentations.VerifiedPresentation, list[tuple[str, IntegrityReport]]]:
        """A presentation with an embedded Data Integrity proof (the holder's, for
        authentication), then each credential in it (enveloped, or with its own embedded
        proof) as ``verify`` does, and whether each belongs to the holder."""
        expect = presentations.Expectations(audience=audience, nonce=nonce, now=self._clock())
        presented = await presentations.verify_di_presentation(document, self._holders, expect)
        return presented, await self._presented(tenant_id, presented, status_lookup, max_age)

    async def _presented(
        self,
        tenant_id: str,
        presented: presentations.VerifiedPresentation,
        status_lookup: verifier.StatusLookup | None,
        max_age: timedelta | None,
    ) -> list[tuple[str, IntegrityReport]]:
        """Each credential of a verified presentation, with its holder binding. A credential
        item neither enveloped (with an accepted media type) nor carrying its own proof raises
        InvalidRequest (a 422 naming it), as on ``/credentials/verify``."""
        reports: list[tuple[str, IntegrityReport]] = []
        if not presented.verified:
            return reports
        for path, item in presented.credentials:
            if isinstance(item, dict) and "proof" in item:
                report = await self.verify_embedded(
                    tenant_id, item, status_lookup=status_lookup, max_age=max_age
                )
            else:
                secured, fmt = vc_api.secured_form(item, field=path)
                report = await self.verify(
                    tenant_id,
                    secured,
                    status_lookup=status_lookup,
                    max_age=max_age,
                    expected_format=fmt,
                )
            report.add(presentations.holder_binding(report, presented.holder, presented.holder_jwk))
            reports.append((path, report))
        return reports

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
            resolver=self.resolver(),
        )

    async def verify_embedded(
        self,
        tenant_id: str,
        secured: Mapping[str, Any],
        *,
        status_lookup: verifier.StatusLookup | None = None,
        max_age: timedelta | None = None,
    ) -> IntegrityReport:
        """A credential secured with an embedded Data Integrity proof (a JSON object)."""
        trust = await self.trust_context(tenant_id, status_lookup)
        options = verifier.VerifyOptions(now=self._clock(), max_age=max_age)
        return await verifier.verify_embedded(secured, trust, options)

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
