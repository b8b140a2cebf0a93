"""One verification: policy, DP lookup, schema check, decision, credential, audit.

The DP is called outside any database transaction; everything the attempt produces (the
verification row, the credential record, the audit leaf and the idempotency record) is then
written in one transaction, so either all of it exists or none of it does. A failed attempt
is recorded and audited too, then reported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pavilion.audit.journal import Batch, JournalEntry
from pavilion.audit.log import AuditReceipt, digest
from pavilion.connect.client import LookupResult
from pavilion.connect.routing import Route, plan_route
from pavilion.credentials.issuance import Issued
from pavilion.credentials.issuer_models import Issuance
from pavilion.credentials.models import IssuedCredential
from pavilion.credentials.service import status_kind
from pavilion.credentials.status.service import StatusReservation
from pavilion.credentials.templates import CredentialFormat, CredentialTemplate
from pavilion.errors import (
    InvalidRequest,
    NotFound,
    PavilionError,
    PolicyDenied,
    ProviderBadResponse,
    ProviderUnavailable,
)
from pavilion.ingest.lineage.lookups import LookupShape
from pavilion.ingest.validation import check_lookup_record
from pavilion.observability.logging import get_logger
from pavilion.observability.metrics import CREDENTIALS_ISSUED, VERIFICATIONS
from pavilion.observability.stages import stage
from pavilion.providers.types import Endpoint, ProviderConnection
from pavilion.store.base import new_id
from pavilion.store.idempotency import Answer, IdempotencyRecord, find_replay
from pavilion.tenancy.sealing import TenantSealer
from pavilion.verification.claims import Claim, Decision, Outcome, decide
from pavilion.verification.models import Verification
from pavilion.verification.purposes import purpose_columns
from pavilion.verification.schemas import VerificationRequest, VerificationResponse
from pavilion.workflows.psi import psi_decide

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)
SCOPE = "verifications"


@dataclass(frozen=True)
class VerificationResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(request: VerificationRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical_identifiers(identifiers: dict[str, str]) -> bytes:
    normalised = {k: v.strip().casefold() for k, v in sorted(identifiers.items())}
    return json.dumps(normalised, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Admitted:
    """What the request resolved to before any DP is asked (all from memory when warm)."""

    claim: Claim
    fmt: CredentialFormat
    template: CredentialTemplate
    provider: ProviderConnection
    adequacy: dict[str, tuple[str, ...]]
    base: dict[str, Any]  # the verification row's fields every outcome shares
    sealer: TenantSealer  # the tenant's data key: the purpose's note is sealed with it


async def run_verification(
    rt: Runtime,
    tenant_id: str,
    request: VerificationRequest,
    idempotency_key: str | None,
    *,
    refreshes: str | None = None,
) -> VerificationResult:
    """Admit, plan the route, fetch (and validate), decide, issue, persist: one stage each.

    The stage names are those of the CPU budget in docs/PERFORMANCE.md.
    """
    with stage("admit"):
        fingerprint = request_hash(request)
        if idempotency_key is not None:
            # A replay this worker answered is served from memory. Any other replay is found
            # when its write meets the stored record (persist), so no read precedes the work.
            recent = rt.idempotency.get(tenant_id, SCOPE, idempotency_key, fingerprint)
            if recent is not None:
                return VerificationResult(recent.status_code, recent.response, replayed=True)
        admitted = await admit(rt, tenant_id, request)
    try:
        with stage("plan"):
            route = plan_route(
                admitted.provider.endpoints,
                request.subject.residency,
                rt.settings.node_region,
                admitted.adequacy,
            )
        with stage("fetch"):
            result, decision = await fetch_and_decide(rt, tenant_id, request, admitted, route)
    except (PolicyDenied, ProviderUnavailable, ProviderBadResponse) as exc:
        with stage("persist"):
            await persist_failure(rt, admitted, exc)
        raise
    with stage("issue"):
        issued = await issue(
            rt, tenant_id, request, admitted, decision=decision, as_of=result.as_of
        )
    with stage("persist"):
        return await persist(
            rt,
            tenant_id,
            admitted,
            result=result,
            decision=decision,
            issued=issued,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            refreshes=refreshes,
        )


async def _replay(
    rt: Runtime, tenant_id: str, idempotency_key: str | None, fingerprint: str
) -> VerificationResult | None:
    if idempotency_key is None:
        return None
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        replay = await find_replay(session, tenant_id, SCOPE, idempotency_key, fingerprint)
    if replay is None:
        return None
    return VerificationResult(
        replay.status_code, with_boolean_decision(replay.response), replayed=True
    )


def with_boolean_decision(body: dict[str, Any]) -> dict[str, Any]:
    """An answer stored before 0.2.0 (``decision`` the string outcome) in today's shape."""
    decision = body.get("decision")
    if not isinstance(decision, str):
        return body
    return {**body, "decision": Outcome(decision).decision, "outcome": decision}


async def admit(rt: Runtime, tenant_id: str, request: VerificationRequest) -> Admitted:
    """The claim, format, template, provider, subject pseudonym and residency rules."""
    claim = request.claim.to_claim()
    # Format and template: as asked, else the tenant's default (checked before the DP is asked).
    fmt, template = await rt.credentials.choose(
        tenant_id, claim.type.value, request.format, request.template
    )
    if request.holder_jwk is not None and fmt is not CredentialFormat.SD_JWT_VC:
        raise InvalidRequest("holder_jwk binds an sd_jwt_vc credential only", field="holder_jwk")
    provider = await rt.providers.cached_connection(
        tenant_id, request.provider_id, claim.type.value
    )
    adequacy = await rt.residency.cached(tenant_id)
    canonical = _canonical_identifiers(request.subject.identifiers)
    subject_ref = rt.tenant_keys.cached_subject_ref(tenant_id, canonical)
    if subject_ref is None:  # the tenant's data key is not in memory yet (first request)
        async with rt.db.transaction(tenant_id, readonly=True) as session:
            subject_ref = await rt.tenant_keys.subject_ref(session, tenant_id, canonical)
    sealer = rt.tenant_keys.cached_sealer(tenant_id)
    assert sealer is not None  # the subject pseudonym put the key in memory
    base = {
        "tenant_id": tenant_id,
        "provider_id": provider.id,
        "claim_type": claim.type.value,
        "claim": json.dumps(claim.canonical(), sort_keys=True),
        "subject_ref": subject_ref,
        "residency": request.subject.residency,
        "purpose": request.purpose,
    }
    return Admitted(claim, fmt, template, provider, adequacy, base, sealer)


async def fetch_and_decide(
    rt: Runtime,
    tenant_id: str,
    request: VerificationRequest,
    admitted: Admitted,
    route: Route[Endpoint],
) -> tuple[LookupResult, Decision]:
    """Ask the DP along the route (failing over), check its answer, decide the claim."""
    provider, claim = admitted.provider, admitted.claim
    if request.mode == "psi":  # the DP's pushed tag sets, through a VOPRF (docs/PRIVACY.md)
        return await psi_decide(
            rt, tenant_id, provider, route, claim=claim, identifiers=request.subject.identifiers
        )
    result = await rt.provider_client.lookup(
        provider,
        route,
        request.subject.identifiers,
        # The client checks every found record against the DP's declared schema; a record
        # that breaks it counts against that endpoint: fail over.
        validate=partial(check_lookup_record, provider.record_schema),
    )
    with stage("decide"):
        return result, decide(claim, result.record, rt.clock().date())


@dataclass(frozen=True)
class IssuedForDecision:
    credential: Issued
    status: StatusReservation


async def issue(
    rt: Runtime,
    tenant_id: str,
    request: VerificationRequest,
    admitted: Admitted,
    *,
    decision: Decision,
    as_of: str | None,
) -> IssuedForDecision | None:
    """The credential a true decision earns, signed (nothing is written here)."""
    if decision.outcome is not Outcome.TRUE:
        return None
    # A random, never reused status-list index; bound to the credential when it is recorded
    # (an unused reservation stays a decoy, never reissued).
    status = await rt.status_lists.reserve(tenant_id, status_kind(admitted.fmt))
    # Signed by the DP's certified key (x5c) when it is accredited, else by ours; the DP's
    # as_of is recorded for the freshness check; validUntil = now + the template's max age.
    credential = await rt.credentials.issue_for_decision(
        tenant_id,
        provider_id=admitted.provider.id,
        fmt=admitted.fmt,
        template=admitted.template,
        subject=decision.subject_claims,
        as_of=as_of,
        issued_at=rt.clock(),
        holder_jwk=request.holder_jwk,
        status=status,
    )
    return IssuedForDecision(credential, status)


async def persist(
    rt: Runtime,
    tenant_id: str,
    admitted: Admitted,
    *,
    result: LookupResult,
    decision: Decision,
    issued: IssuedForDecision | None,
    idempotency_key: str | None,
    fingerprint: str,
    refreshes: str | None,
) -> VerificationResult:
    """Record the verification, its credential and its audit leaf in the journal (one commit)."""
    credential = issued.credential if issued is not None else None
    verification_id = new_id()
    now = rt.clock()
    fields = {
        **admitted.base,
        "id": verification_id,
        "created_at": now,
        "status": "succeeded",
        "decision": decision.outcome.value,
        "region": result.region,
        "credential_id": credential.id if credential else None,
    }
    fmt = admitted.fmt

    def write(batch: Batch, receipt: AuditReceipt) -> dict[str, Any]:
        row = {**_stored(admitted.sealer, fields), "audit_index": receipt.index}
        batch.insert(Verification, row)
        if issued is not None:
            signed = issued.credential
            batch.transition(rt.status_lists.binding(tenant_id, issued.status, signed.id))
            batch.insert(
                IssuedCredential,
                {
                    "id": signed.id,
                    "tenant_id": tenant_id,
                    "verification_id": verification_id,
                    "format": fmt.value,
                    "key_id": signed.key_id,
                    "digest": signed.digest,
                    "valid_from": signed.valid_from,
                    "valid_until": signed.valid_until,
                },
            )
            batch.insert(
                Issuance,
                rt.credentials.issuance_values(
                    tenant_id, signed, verification_id=verification_id, refreshes=refreshes
                ),
            )
        body = _response(row, receipt, credential, fmt.value)
        if idempotency_key is not None:
            batch.insert(
                IdempotencyRecord,
                {
                    "tenant_id": tenant_id,
                    "scope": SCOPE,
                    "key": idempotency_key,
                    "request_hash": fingerprint,
                    "status_code": 201,
                    "response": body,
                },
            )
        return body

    event = _audit_event(fields, credential.digest if credential else None)
    try:
        body = await rt.journal.write(tenant_id, JournalEntry(event, write))
    except IntegrityError:
        # The Idempotency-Key was answered before (or by a concurrent request that won the
        # race): answer as it did, or 409 if it came with another body.
        replay = await _replay(rt, tenant_id, idempotency_key, fingerprint)
        if replay is None:
            raise
        return replay
    if idempotency_key is not None:
        rt.idempotency.put(tenant_id, SCOPE, idempotency_key, Answer(fingerprint, 201, body))

    claim_type = admitted.claim.type.value
    rt.lookup_lineage.record(  # counted; one lineage event per outcome per window
        LookupShape(
            tenant_id,
            admitted.provider.id,
            claim_type,
            found=result.found,
            schema_valid=True,
            status="succeeded",
            decision=decision.outcome.value,
            credential_issued=credential is not None,
        )
    )
    VERIFICATIONS.labels(claim_type, "succeeded", decision.outcome.value).inc()
    if credential is not None:
        CREDENTIALS_ISSUED.labels(fmt.value).inc()
    log.info(
        "verification",
        verification_id=verification_id,
        provider_id=admitted.provider.id,
        claim_type=claim_type,
        decision=decision.outcome.value,
        region=result.region,
        attempts=result.attempts,
    )
    return VerificationResult(201, body)


_FAILURE_STATUS = {
    PolicyDenied: "policy_denied",
    ProviderUnavailable: "provider_unavailable",
    ProviderBadResponse: "provider_bad_response",
}


async def persist_failure(rt: Runtime, admitted: Admitted, exc: PavilionError) -> None:
    """Record and audit a failed attempt (then the caller raises it)."""
    # isinstance, not type(): subclasses such as ResidencyPreventedFailover map to their base.
    status = next(s for cls, s in _FAILURE_STATUS.items() if isinstance(exc, cls))
    base = admitted.base
    fields = {
        **base,
        "id": new_id(),
        "created_at": rt.clock(),
        "status": status,
        "decision": None,
        "region": None,
        "credential_id": None,
    }

    def write(batch: Batch, receipt: AuditReceipt) -> AuditReceipt:
        row = {**_stored(admitted.sealer, fields), "audit_index": receipt.index}
        batch.insert(Verification, row)
        return receipt

    receipt = await rt.journal.write(
        base["tenant_id"], JournalEntry(_audit_event(fields, None), write)
    )
    if isinstance(exc, ProviderBadResponse):  # the DP answered, but not to its schema
        rt.lookup_lineage.record(
            LookupShape(
                base["tenant_id"],
                base["provider_id"],
                base["claim_type"],
                found=False,
                schema_valid=False,
                status=status,
                decision=None,
                credential_issued=False,
            )
        )
    exc.extra.update({"verification_id": fields["id"], "audit_index": receipt.index})
    VERIFICATIONS.labels(base["claim_type"], status, "none").inc()
    log.warning(
        "verification failed",
        verification_id=fields["id"],
        provider_id=base["provider_id"],
        status=status,
    )


def _stored(sealer: TenantSealer, fields: dict[str, Any]) -> dict[str, Any]:
    """The row as stored: the purpose as its code and, for ``other``, its note sealed."""
    row = {k: v for k, v in fields.items() if k != "purpose"}
    return row | purpose_columns(sealer, fields["id"], fields["purpose"])


def _audit_event(fields: dict[str, Any], credential_digest: str | None) -> dict[str, Any]:
    """What the audit leaf commits to: ids, hashes and outcomes; never PII or free text."""
    return {
        "kind": "verification",
        "verification_id": fields["id"],
        "provider_id": fields["provider_id"],
        "claim": json.loads(fields["claim"]),
        "subject_ref": fields["subject_ref"],
        "residency": fields["residency"],
        "purpose_sha256": digest(fields["purpose"]),
        "region": fields["region"],
        "status": fields["status"],
        "decision": fields["decision"],
        "credential_id": fields["credential_id"],
        "credential_sha256": credential_digest,
        "at": fields["created_at"].isoformat(),
    }


def _response(
    row: dict[str, Any], receipt: AuditReceipt, credential: Issued | None, fmt: str
) -> dict[str, Any]:
    return VerificationResponse(
        id=row["id"],
        status=row["status"],
        decision=Outcome(row["decision"]).decision,
        outcome=row["decision"],
        provider_id=row["provider_id"],
        region=row["region"],
        claim=json.loads(row["claim"]),
        credential=credential.token if credential else None,
        credential_format=fmt if credential else None,
        credential_id=credential.id if credential else None,
        audit={"index": receipt.index, "leaf_hash": receipt.leaf_hash},
        created_at=row["created_at"].isoformat(),
    ).model_dump(mode="json")


async def get_verification(rt: Runtime, tenant_id: str, verification_id: str) -> dict[str, Any]:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        row = (
            await session.execute(
                select(Verification).where(
                    Verification.tenant_id == tenant_id, Verification.id == verification_id
                )
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"verification {verification_id} does not exist")
    return {
        "id": row.id,
        "status": row.status,
        "decision": None if row.decision is None else Outcome(row.decision).decision,
        "outcome": row.decision,
        "provider_id": row.provider_id,
        "region": row.region,
        "claim": json.loads(row.claim),
        "credential_id": row.credential_id,
        "audit": {"index": row.audit_index},
        "created_at": row.created_at.isoformat(),
    }
