"""Zero-knowledge predicate presentations, broker-mediated (a use case across domains).

For one request the connector: validates the proof request against the claim's circuit
(before anything else happens), looks the subject up at the DP (residency routing applies),
turns the record into attribute values, and — only if the predicate holds — obtains a
one-time AnonCreds credential from the DP's credential definition into a fresh registry slot,
proves the predicate and non-revocation to the relying party, checks its own proof, and drops
the credential and the link secret. The relying party receives the presentation, which holds
no attribute value except the ones the circuit reveals (the club's name, for membership).

Relying parties verify with :func:`verify_zk_presentation` (or any AnonCreds verifier, with
the public objects served under ``/v1/anoncreds``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import TYPE_CHECKING, Any, Final, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from pavilion.audit.log import AuditLeafRef
from pavilion.connect.residency import load_adequacy
from pavilion.connect.routing import plan_route
from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.types import Issuer
from pavilion.errors import CryptoError, VerificationFailed
from pavilion.ingest.validation import check_lookup_record
from pavilion.observability.logging import get_logger
from pavilion.privacy import zkp
from pavilion.privacy.receipts import ReceiptDraft, sha256_hex
from pavilion.privacy.zkp import PredicateClaim, PredicateClaimView, PredicateKind
from pavilion.verification.claims import ClaimType, Outcome
from pavilion.verification.schemas import SubjectRequest
from pavilion.workflows.verify import _canonical_identifiers

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)
MECHANISM: Final = "AnonCreds CL predicate proof + CL_ACCUM non-revocation (anoncreds-rs)"
_PROVIDER_CLAIM: Final = {
    PredicateKind.AGE_OVER: ClaimType.AGE_OVER,
    PredicateKind.BIRTH_DATE_BETWEEN: ClaimType.AGE_OVER,
    PredicateKind.MEMBERSHIP: ClaimType.MEMBERSHIP,
    PredicateKind.STUDENT_STATUS: ClaimType.STUDENT_STATUS,
}


class PredicateClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: PredicateKind
    threshold: int | None = Field(
        default=None, ge=1, le=150, description="age_over: 13, 16, 18, 21, 25, 65"
    )
    start: date | None = Field(default=None, description="birth_date_between: first day")
    end: date | None = Field(default=None, description="birth_date_between: last day")
    group: str | None = Field(default=None, min_length=1, max_length=200)

    def to_claim(self) -> PredicateClaim:
        return PredicateClaim(self.type, self.threshold, self.start, self.end, self.group)


class PresentationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str | None = Field(default=None, max_length=36)
    claim: PredicateClaimIn
    subject: SubjectRequest
    purpose: str = Field(min_length=1, max_length=200)
    proof_request: dict[str, Any] | None = Field(
        default=None,
        description="The relying party's AnonCreds proof request; checked against the "
        "claim's circuit. Omitted: the connector builds the request for the claim.",
    )
    nonce: str | None = Field(
        default=None,
        pattern=r"^[0-9]{10,80}$",
        description="The relying party's nonce when the connector builds the request.",
    )


class RevocationReference(TypedDict):
    """What a verifier needs to check the one-time credential's non-revocation."""

    schema_id: str
    cred_def_id: str
    rev_reg_def_id: str
    timestamp: int
    credential_id: str


class ZkPresentation(TypedDict):
    """The answer to a predicate: the decision, and the presentation when it holds."""

    decision: bool | None
    outcome: str
    claim: PredicateClaimView
    presentation: dict[str, Any] | None
    presentation_request: dict[str, Any]
    verify_with: RevocationReference | None
    receipt_id: str
    audit: AuditLeafRef


class ZkVerification(TypedDict):
    verified: bool
    reason: str | None
    identifiers: list[dict[str, Any]]
    revealed: dict[str, Any]


class PresentationCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presentation: dict[str, Any]
    presentation_request: dict[str, Any]


async def run_zk_presentation(rt: Runtime, tenant_id: str, body: PresentationIn) -> ZkPresentation:
    claim = body.claim.to_claim()
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        provider = await rt.providers.connection(
            session, tenant_id, body.provider_id, _PROVIDER_CLAIM[claim.kind].value
        )
        subject_ref = await rt.tenant_keys.subject_ref(
            session, tenant_id, _canonical_identifiers(body.subject.identifiers)
        )
        adequacy = await load_adequacy(session, tenant_id)
    issuer = await rt.privacy.anoncreds.ensure_issuer(tenant_id, provider.id)
    material = issuer.material
    now = rt.clock()  # after the (first-use) credential definition, which takes seconds
    today, now_ts = now.date(), int(now.timestamp())
    if body.proof_request is not None:
        request = zkp.validate_request(
            claim, body.proof_request, cred_def_id=material.cred_def_id, today=today, now=now_ts
        )
    else:
        request = zkp.build_request(
            claim,
            cred_def_id=material.cred_def_id,
            today=today,
            now=now_ts,
            nonce=body.nonce or engine.generate_nonce(),
        )

    route = plan_route(
        provider.endpoints, body.subject.residency, rt.settings.node_region, adequacy
    )
    result = await rt.provider_client.lookup(provider, route, body.subject.identifiers)
    presentation_json: str | None = None
    verify_with: RevocationReference | None = None
    if result.record is None:
        outcome = Outcome.UNKNOWN
    else:
        check_lookup_record(provider.record_schema, result.record)
        values = zkp.attribute_values(result.record, claim.group)
        outcome = Outcome.TRUE if zkp.holds(claim, values, today) else Outcome.FALSE
        if outcome is Outcome.TRUE:
            presentation_json, verify_with = await _present(
                rt, tenant_id, issuer, request, values=values, subject_ref=subject_ref, claim=claim
            )
        del values  # the attribute values leave this function only inside the proof

    parameters = {
        "provider_id": provider.id,
        "claim": claim.canonical(),
        "cred_def_id": material.cred_def_id,
        "circuit": _circuit_text(claim, today),
        "revocation": verify_with,
    }
    async with rt.db.transaction(tenant_id) as session:
        receipt = await rt.privacy.receipts.issue(
            session,
            tenant_id,
            ReceiptDraft(
                kind="zkp.presentation",
                mechanism=MECHANISM,
                parameters=parameters,
                inputs_sha256=sha256_hex(request),
                outputs_sha256=sha256_hex(presentation_json or {"decision": outcome.value}),
            ),
        )
    log.info(
        "zk presentation",
        provider_id=provider.id,
        claim_type=claim.kind.value,
        decision=outcome.value,
        receipt_id=receipt.id,
    )
    return ZkPresentation(
        decision=outcome.decision,
        outcome=outcome.value,
        claim=claim.canonical(),
        presentation=json.loads(presentation_json) if presentation_json else None,
        presentation_request=request,
        verify_with=verify_with,
        receipt_id=receipt.id,
        audit=AuditLeafRef(index=receipt.audit_index, leaf_hash=receipt.leaf_hash),
    )


async def _present(
    rt: Runtime,
    tenant_id: str,
    issuer: Issuer,
    request: dict[str, Any],
    *,
    values: dict[str, str],
    subject_ref: str,
    claim: PredicateClaim,
) -> tuple[str, RevocationReference]:
    """Issue the one-time credential, present, self-verify; nothing of it is kept."""
    service = rt.privacy.anoncreds
    material = issuer.material
    slot = await service.allocate(
        tenant_id,
        issuer,
        subject_ref=subject_ref,
        purpose="one-time",
        details={"claim": claim.canonical()},
    )
    interval = request["non_revoked"]
    timestamp, list_json = await service.status_list_within(
        tenant_id, slot.registry_id, interval.get("from"), interval["to"]
    )
    tails = await service.registry_tails(tenant_id, slot.registry_id)
    offer = await asyncio.to_thread(engine.create_offer, material)

    def issue(request_json: str) -> str:
        return engine.issue_credential(
            material,
            offer,
            request_json,
            values,
            rev_reg_def_json=slot.rev_reg_def_json,
            rev_reg_private_json=slot.private_json,
            status_list_json=slot.status_list_json,
            index=slot.index,
        )

    presentation_json = await asyncio.to_thread(
        zkp.present_one_time,
        request,
        material,
        offer_json=offer,
        issue=issue,
        timestamp=timestamp,
        status_list_json=list_json,
        rev_reg_def_json=slot.rev_reg_def_json,
        index=slot.index,
        tails_path=tails,
    )
    verified = await asyncio.to_thread(
        engine.verify_presentation,
        presentation_json,
        request,
        schemas={material.schema_id: material.schema_json},
        cred_defs={material.cred_def_id: material.cred_def_json},
        rev_reg_defs={slot.rev_reg_def_id: slot.rev_reg_def_json},
        status_lists=[list_json],
    )
    if not verified:
        raise CryptoError("the connector's own presentation does not verify; nothing was sent")
    return presentation_json, RevocationReference(
        schema_id=material.schema_id,
        cred_def_id=material.cred_def_id,
        rev_reg_def_id=slot.rev_reg_def_id,
        timestamp=timestamp,
        credential_id=slot.credential_id,
    )


class CircuitText(TypedDict):
    """The circuit a receipt records: attributes revealed and predicates proved, as text."""

    reveal: list[str]
    predicates: list[str]


def _circuit_text(claim: PredicateClaim, today: date) -> CircuitText:
    shape = zkp.circuit(claim, today)
    return CircuitText(
        reveal=list(shape.reveal),
        predicates=[f"{n} {t} {v}" for n, t, v in shape.predicates],
    )


async def verify_zk_presentation(
    rt: Runtime, tenant_id: str, body: PresentationCheckIn
) -> ZkVerification:
    """Verify a presentation with this tenant's public AnonCreds objects."""
    presentation_json = json.dumps(body.presentation)
    identifiers = engine.presentation_identifiers(presentation_json)
    material = await rt.privacy.anoncreds.verification_material(tenant_id, identifiers)
    try:
        verified = await asyncio.to_thread(
            engine.verify_presentation,
            presentation_json,
            body.presentation_request,
            schemas=material["schemas"],
            cred_defs=material["cred_defs"],
            rev_reg_defs=material["rev_reg_defs"],
            status_lists=material["status_lists"],
        )
        reason = None if verified else "the proof, or non-revocation, does not hold"
    except VerificationFailed as exc:
        verified, reason = False, exc.detail
    revealed = {
        referent: entry.get("raw")
        for referent, entry in body.presentation.get("requested_proof", {})
        .get("revealed_attrs", {})
        .items()
        if isinstance(entry, dict)
    }
    return ZkVerification(
        verified=verified, reason=reason, identifiers=identifiers, revealed=revealed
    )
