"""The credentials domain at its I/O edge: the one object the runtime holds.

:class:`CredentialService` is made of four parts, one module each, and offers their methods:

* trust roots and accreditation (:mod:`~pavilion.credentials.trust_roots`): ``create_root``,
  ``root``, ``certify_provider``, ``provider_trust``, ``anchors``, ``accreditation_for_key``;
* template defaults (:mod:`~pavilion.credentials.defaults`): ``defaults``, ``set_default``,
  ``choose``;
* issuance (:mod:`~pavilion.credentials.issuing`): ``issuing_key``, ``issue_for_decision``,
  ``issuance_row``, ``issuance_values``, ``issue_vc_api``, ``complete_document``;
* verification (:mod:`~pavilion.credentials.verifying`): ``trust_context``, ``verify``,
  ``verify_embedded`` (Data Integrity proofs), ``verify_vp_jwt``, ``verify_di_presentation``;

and ``did_document``: the connector's did:web DID document when it signs Data Integrity
proofs as a did:web (:mod:`~pavilion.credentials.data_integrity.identity`).

The parts share one short-lived configuration cache (:mod:`~pavilion.store.config_cache`,
:data:`CACHE_SECONDS`: single flight, reloaded ahead of expiry), so certifying a DP drops the
tenant's cached defaults too, as it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pavilion.audit.journal import Journal
from pavilion.audit.log import AuditLog
from pavilion.credentials.data_integrity.did import DidWebFetcher
from pavilion.credentials.data_integrity.identity import IssuerDid
from pavilion.credentials.defaults import TemplateDefaults
from pavilion.credentials.issuing import CredentialIssuer, CredentialKeystore, status_kind
from pavilion.credentials.keys import IssuerKeyStore
from pavilion.credentials.trust_roots import TrustRoots
from pavilion.credentials.verifying import CredentialVerifier
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database

__all__ = ["CredentialService", "status_kind"]

#: How long trust material and defaults read from the database are reused (like tokens); a
#: change through this worker drops the tenant's entries at once, another sees it within this.
CACHE_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


class CredentialService:
    """Trust roots, template defaults, issuance and verification of one connector."""

    def __init__(
        self,
        db: Database,
        keystore: CredentialKeystore,
        audit: AuditLog,
        issuer_keys: IssuerKeyStore,
        journal: Journal,
        *,
        issuer_id: str,
        clock: Callable[[], datetime] = _now,
        issuer_did: IssuerDid | None = None,
        did_web: DidWebFetcher | None = None,
    ) -> None:
        self._issuer_id = issuer_id
        self.issuer_did = issuer_did or IssuerDid()
        self._keystore = keystore
        cache = ConfigCache(CACHE_SECONDS)
        trust = TrustRoots(db, audit, issuer_keys, cache, issuer_id=issuer_id, clock=clock)
        defaults = TemplateDefaults(db, cache, clock=clock, audit=audit)
        issuer = CredentialIssuer(
            journal,
            keystore,
            trust,
            issuer_id=issuer_id,
            clock=clock,
            issuer_did=self.issuer_did,
        )
        verifier = CredentialVerifier(
            keystore, trust, clock=clock, did_web=did_web, issuer_did=self.issuer_did
        )
        self.create_root = trust.create_root
        self.root = trust.root
        self.certify_provider = trust.certify_provider
        self.provider_trust = trust.provider_trust
        self.anchors = trust.anchors
        self.accreditation_for_key = trust.accreditation_for_key
        self.defaults = defaults.defaults
        self.set_default = defaults.set_default
        self.choose = defaults.choose
        self.issuing_key = issuer.issuing_key
        self.issue_for_decision = issuer.issue_for_decision
        self.issuance_row = issuer.issuance_row
        self.issuance_values = issuer.issuance_values
        self.issue_vc_api = issuer.issue_vc_api
        self.complete_document = issuer.complete_document
        self.trust_context = verifier.trust_context
        self.verify = verifier.verify
        self.verify_embedded = verifier.verify_embedded
        self.verify_vp_jwt = verifier.verify_vp_jwt
        self.verify_di_presentation = verifier.verify_di_presentation

    @property
    def issuer_id(self) -> str:
        return self._issuer_id

    def did_document(self) -> dict[str, Any] | None:
        """The connector's did:web DID document (None without a did:web): every
        credential-signing key that still verifies, for assertionMethod."""
        return self.issuer_did.document(self._keystore.public_jwks("credential-signing"))
