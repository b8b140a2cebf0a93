"""Issuance at the I/O edge: sign a credential with the right key and record it.

``issue_for_decision`` (the verification flow) and ``issue_vc_api`` (the VC-API) sign through
a :class:`~pavilion.keystore.signer.Signer`: the DP's certified key when it is accredited for
the claim type (:mod:`~pavilion.credentials.trust_roots`), else the connector's own. A VC-API
credential with an embedded Data Integrity proof (:mod:`~pavilion.credentials.embedded`) is
signed by the connector's key of the cryptosuite's algorithm, its issuer the DID of that key. Each
issuance is recorded (``credential_issuances``) and, on the VC-API path, audited with its
status binding in the same transaction: one entry of the audit journal
(:mod:`~pavilion.audit.journal`), which concurrent issuances and verifications of the tenant
share.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pavilion.audit.journal import Batch, Journal, JournalEntry, Transition
from pavilion.audit.log import AuditReceipt
from pavilion.credentials import data_model, embedded, issuance, vc2
from pavilion.credentials.data_integrity.identity import IssuerDid
from pavilion.credentials.embedded import IssuedEmbedded
from pavilion.credentials.issuance import Issued, IssuingKey, StatusEmbed
from pavilion.credentials.issuer_models import Issuance
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.templates import CredentialFormat, CredentialTemplate, by_credential_type
from pavilion.credentials.timeutil import iso
from pavilion.credentials.trust_roots import TrustRoots
from pavilion.errors import InvalidRequest
from pavilion.keystore.signer import Algorithm, Signer
from pavilion.observability.logging import get_logger
from pavilion.observability.stages import stage

log = get_logger(__name__)


class CredentialKeystore(Protocol):
    """What the credentials domain needs of the keystore (either backend)."""

    def signer(
        self, purpose: Literal["credential-signing"], algorithm: Algorithm | None = None
    ) -> Signer: ...

    def public_jwks(self, purpose: Literal["credential-signing"]) -> list[dict[str, str]]: ...


class StatusLists(Protocol):
    """What the credentials domain needs of the status-list service."""

    async def reserve(self, tenant_id: str, kind: str = "token") -> StatusEmbed: ...

    def binding(self, tenant_id: str, reservation: Any, credential_id: str) -> Transition: ...

    async def resolve_status(self, list_uri: str, index: int) -> int: ...


def status_kind(fmt: CredentialFormat) -> str:
    """Which status list a format uses: W3C Bitstring for VC 2.0, IETF Token otherwise."""
    return "bitstring" if fmt is CredentialFormat.VC2_JOSE else "token"


def parse_as_of(as_of: str | None) -> datetime | None:
    """The DP's ``as_of`` (ISO 8601); naive times are UTC; garbage counts as absent."""
    if not as_of:
        return None
    try:
        moment = datetime.fromisoformat(as_of)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class IssuedRecord(Protocol):
    """What an issuance record keeps of any issued credential (enveloped or embedded)."""

    @property
    def id(self) -> str: ...
    @property
    def format_name(self) -> str: ...
    @property
    def template(self) -> CredentialTemplate | None: ...
    @property
    def key_id(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def vouched_at(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime: ...


class CredentialIssuer:
    """Signs credentials (verification decisions and the VC-API) and records each issuance."""

    def __init__(
        self,
        journal: Journal,
        keystore: CredentialKeystore,
        trust: TrustRoots,
        *,
        issuer_id: str,
        clock: Callable[[], datetime],
        issuer_did: IssuerDid | None = None,
    ) -> None:
        self._keystore = keystore
        self._journal = journal
        self._trust = trust
        self._issuer_id = issuer_id
        self._clock = clock
        self._issuer_did = issuer_did or IssuerDid()

    async def issuing_key(
        self, tenant_id: str, provider_id: str | None, claim_type: str | None
    ) -> IssuingKey:
        """The DP's certified key when it is accredited for the claim type, else ours."""
        if provider_id is not None:
            found = await self._trust.provider_key(tenant_id, provider_id)
            if found is not None:
                if claim_type in found.claim_types and found.not_after > self._clock():
                    return found.key
                log.warning(
                    "provider key not used: claim type not accredited or link expired",
                    tenant_id=tenant_id,
                    provider_id=provider_id,
                    claim_type=claim_type,
                )
        return IssuingKey(self._keystore.signer("credential-signing"))

    async def issue_for_decision(
        self,
        tenant_id: str,
        *,
        provider_id: str,
        fmt: CredentialFormat,
        template: CredentialTemplate,
        subject: Mapping[str, Any],
        as_of: str | None,
        issued_at: datetime,
        holder_jwk: Mapping[str, Any] | None = None,
        status: StatusEmbed | None = None,
    ) -> Issued:
        """Sign the credential a true decision earns (nothing is written here)."""
        key = await self.issuing_key(tenant_id, provider_id, template.claim_type)
        return await issuance.issue(
            fmt=fmt,
            template=template,
            subject=subject,
            issuer=self._issuer_id,
            key=key,
            issued_at=issued_at,
            vouched_at=parse_as_of(as_of),
            holder_jwk=holder_jwk,
            status=status,
        )

    def issuance_row(
        self,
        tenant_id: str,
        issued: IssuedRecord,
        *,
        verification_id: str | None,
        refreshes: str | None = None,
    ) -> Issuance:
        return Issuance(
            **self.issuance_values(
                tenant_id, issued, verification_id=verification_id, refreshes=refreshes
            )
        )

    def issuance_values(
        self,
        tenant_id: str,
        issued: IssuedRecord,
        *,
        verification_id: str | None,
        refreshes: str | None = None,
    ) -> dict[str, Any]:
        """The issuance row's columns (for a multi-row insert, see ``audit.journal``)."""
        return {
            "id": issued.id,
            "tenant_id": tenant_id,
            "verification_id": verification_id,
            "refreshes": refreshes,
            "format": issued.format_name,
            "template_id": issued.template.id if issued.template else None,
            "claim_type": issued.template.claim_type if issued.template else None,
            "key_id": issued.key_id,
            "digest": issued.digest,
            "vouched_at": issued.vouched_at,
            "valid_until": issued.valid_until,
            "created_at": self._clock(),
        }

    async def issue_vc_api(
        self,
        tenant_id: str,
        credential: Mapping[str, Any],
        *,
        fmt: CredentialFormat = CredentialFormat.VC2_JOSE,
        credential_id: str | None = None,
        holder_jwk: Mapping[str, Any] | None = None,
        vct: str | None = None,
        provider_id: str | None = None,
        status_lists: StatusLists | None = None,
        cryptosuite: str | None = None,
    ) -> Issued | IssuedEmbedded:
        """Secure an unsecured VC 2.0 credential (the VC-API ``/credentials/issue``): in an
        envelope (``fmt``), or with an embedded Data Integrity proof (``cryptosuite``)."""
        now = self._clock()
        if cryptosuite is not None:
            return await self._issue_embedded(
                tenant_id,
                credential,
                cryptosuite=cryptosuite,
                credential_id=credential_id,
                status_lists=status_lists,
                now=now,
            )
        # The stages of docs/PERFORMANCE.md: admit (the document completed and checked, the
        # key chosen), issue (the status entry reserved, the credential signed), persist.
        with stage("admit"):
            fmt = CredentialFormat(fmt)
            document = self.complete_document(credential, credential_id=credential_id, now=now)
            template = by_credential_type(document["type"])
            key = await self.issuing_key(
                tenant_id, provider_id, template.claim_type if template else None
            )
            if provider_id is not None and key.provider_id != provider_id:
                raise InvalidRequest(
                    f"provider {provider_id} has no certified key accredited for this "
                    "credential type",
                    field="options.providerId",
                )
        with stage("issue"):
            status = None
            if status_lists is not None:
                status = await status_lists.reserve(tenant_id, status_kind(fmt))
            issued = await issuance.issue_document(
                document,
                fmt=fmt,
                template=template,
                key=key,
                issued_at=now,
                holder_jwk=holder_jwk,
                status=status,
                vct=vct,
            )
        with stage("persist"):
            await self._record(tenant_id, issued, status, status_lists, now)
        return issued

    async def _issue_embedded(
        self,
        tenant_id: str,
        credential: Mapping[str, Any],
        *,
        cryptosuite: str,
        credential_id: str | None,
        status_lists: StatusLists | None,
        now: datetime,
    ) -> IssuedEmbedded:
        """A Data Integrity proof by the keystore's key of the cryptosuite's algorithm, the
        issuer being the DID that controls it."""
        with stage("admit"):
            algorithm = embedded.algorithm_for(cryptosuite)
            signer = self._keystore.signer("credential-signing", algorithm)
            issuer, method = self._issuer_did.method_for(signer.public_jwk())
            document = self.complete_document(
                credential, credential_id=credential_id, now=now, issuer=issuer
            )
        with stage("issue"):
            status = None
            if status_lists is not None:
                status = await status_lists.reserve(tenant_id, "bitstring")
            issued = await embedded.issue_embedded(
                document,
                signer=signer,
                verification_method=method,
                issued_at=now,
                template=by_credential_type(document["type"]),
                status=status,
            )
        with stage("persist"):
            await self._record(tenant_id, issued, status, status_lists, now)
        return issued

    async def _record(
        self,
        tenant_id: str,
        issued: IssuedRecord,
        status: StatusEmbed | None,
        status_lists: StatusLists | None,
        now: datetime,
    ) -> None:
        event = {
            "kind": "credential_issued",
            "credential_id": issued.id,
            "format": issued.format_name,
            "template": issued.template.id if issued.template else None,
            "key_id": issued.key_id,
            "credential_sha256": issued.digest,
            "at": iso(now),
        }

        def write(batch: Batch, receipt: AuditReceipt) -> None:
            # Built afresh on each call: the journal runs a write again when its batch fails.
            batch.insert(Issuance, self.issuance_values(tenant_id, issued, verification_id=None))
            if status is not None and status_lists is not None:
                batch.transition(status_lists.binding(tenant_id, status, issued.id))

        # The record, the status binding and the audit leaf commit together, in the journal's
        # transaction that concurrent issuances and verifications of the tenant share; nothing
        # is answered before that commit.
        await self._journal.write(tenant_id, JournalEntry(event, write))

    def complete_document(
        self,
        credential: Mapping[str, Any],
        *,
        credential_id: str | None,
        now: datetime,
        issuer: str | None = None,
    ) -> dict[str, Any]:
        """Fill id, issuer, validFrom, validUntil and the attestation; check the result.

        ``issuer`` is who the credential must name: the connector's issuer id, or for an
        embedded proof the DID that controls the signing key.
        """
        if "proof" in credential:
            raise InvalidRequest(
                "send an unsecured credential: it must not carry a proof",
                field="credential.proof",
            )
        expected = issuer or self._issuer_id
        document = dict(credential)
        named = vc2.issuer_id(document) if "issuer" in document else expected
        if named != expected:
            why = (
                "the DID that controls the Data Integrity proof's verification method"
                if issuer is not None
                else "this connector's issuer id"
            )
            raise InvalidRequest(
                f"issuer must be {why} {expected!r}, not {named!r}", field="credential.issuer"
            )
        document.setdefault("issuer", expected)
        if "id" not in document:
            document["id"] = credential_id or f"urn:uuid:{uuid.uuid4()}"
        template = by_credential_type(document.get("type"))
        # The validity period runs from now (issuance.vc_api_validity says why).
        document.update(issuance.vc_api_validity(document, template, now))
        if template is not None and not any(
            isinstance(e, dict) and e.get("type") == "DataProviderAttestation"
            for e in _as_list(document.get("evidence"))
        ):
            # The connector vouches for what it signs at the time it signs.
            document["evidence"] = [
                *_as_list(document.get("evidence")),
                issuance.attestation(None, now, template),
            ]
        data_model.check_credential(document)  # 422 naming the member and the section
        try:
            vc2.check_document(document)
        except CheckFailed as exc:
            raise InvalidRequest(exc.reason, field="credential") from exc
        return document


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
