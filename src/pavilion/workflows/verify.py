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

from pavilion.audit.log import AuditReceipt, digest
from pavilion.connect.residency import load_adequacy
from pavilion.connect.routing import plan_route
from pavilion.credentials.models import IssuedCredential
from pavilion.credentials.service import status_kind
from pavilion.credentials.templates import CredentialFormat
from pavilion.errors import (
    InvalidRequest,
    NotFound,
    PavilionError,
    PolicyDenied,
    ProviderBadResponse,
    ProviderUnavailable,
)
from pavilion.ingest.lineage.store import record_lookup
from pavilion.ingest.validation import check_lookup_record
from pavilion.observability.logging import get_logger
from pavilion.observability.metrics import CREDENTIALS_ISSUED, VERIFICATIONS
from pavilion.store.base import new_id
from pavilion.store.idempotency import IdempotencyRecord, find_replay
from pavilion.verification.claims import Outcome, decide
from pavilion.verification.models import Verification
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


async def run_verification(
    rt: Runtime,
    tenant_id: str,
    request: VerificationRequest,
    idempotency_key: str | None,
    *,
    refreshes: str | None = None,
) -> VerificationResult:
    fingerprint = request_hash(request)
    if idempotency_key is not None:
        async with rt.db.transaction(tenant_id, readonly=True) as session:
            replay = await find_replay(session, tenant_id, SCOPE, idempotency_key, fingerprint)
        if replay is not None:
            return VerificationResult(replay.status_code, replay.response, replayed=True)

    claim = request.claim.to_claim()
    # Format and template: as asked, else the tenant's default (checked before the DP is asked).
    fmt, template = await rt.credentials.choose(
        tenant_id, claim.type.value, request.format, request.template
    )
    if request.holder_jwk is not None and fmt is not CredentialFormat.SD_JWT_VC:
        raise InvalidRequest("holder_jwk binds an sd_jwt_vc credential only", field="holder_jwk")
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        provider = await rt.providers.connection(
            session, tenant_id, request.provider_id, claim.type.value
        )
        subject_ref = await rt.tenant_keys.subject_ref(
            session, tenant_id, _canonical_identifiers(request.subject.identifiers)
        )
        adequacy = await load_adequacy(session, tenant_id)

    base = {
        "tenant_id": tenant_id,
        "provider_id": provider.id,
        "claim_type": claim.type.value,
        "claim": json.dumps(claim.canonical(), sort_keys=True),
        "subject_ref": subject_ref,
        "residency": request.subject.residency,
        "purpose": request.purpose,
    }

    try:
        route = plan_route(
            provider.endpoints, request.subject.residency, rt.settings.node_region, adequacy
        )
        if request.mode == "psi":  # the DP's pushed tag sets, through a VOPRF (docs/PRIVACY.md)
            result, decision = await psi_decide(
                rt, tenant_id, provider, route, claim=claim, identifiers=request.subject.identifiers
            )
        else:
            result = await rt.provider_client.lookup(
                provider,
                route,
                request.subject.identifiers,
                # The client checks every found record against the DP's declared schema; a
                # record that breaks it counts against that endpoint: fail over.
                validate=partial(check_lookup_record, provider.record_schema),
            )
            decision = decide(claim, result.record, rt.clock().date())
    except (PolicyDenied, ProviderUnavailable, ProviderBadResponse) as exc:
        await _record_failure(rt, base, exc)
        raise

    now = rt.clock()
    credential = None
    status = None
    if decision.outcome is Outcome.TRUE:
        # A random, never reused status-list index; bound to the credential below, in the
        # transaction that records it (an unused reservation stays a decoy, never reissued).
        status = await rt.status_lists.reserve(tenant_id, status_kind(fmt))
        # Signed by the DP's certified key (x5c) when it is accredited, else by ours; the DP's
        # as_of is recorded for the freshness check; validUntil = now + the template's max age.
        credential = await rt.credentials.issue_for_decision(
            tenant_id,
            provider_id=provider.id,
            fmt=fmt,
            template=template,
            subject=decision.subject_claims,
            as_of=result.as_of,
            issued_at=now,
            holder_jwk=request.holder_jwk,
            status=status,
        )

    verification = Verification(
        **base,
        id=new_id(),
        created_at=now,
        status="succeeded",
        decision=decision.outcome.value,
        region=result.region,
        credential_id=credential.id if credential else None,
    )
    try:
        async with rt.db.transaction(tenant_id) as session:
            receipt = await rt.audit.append(
                session,
                tenant_id,
                _audit_event(verification, credential.digest if credential else None),
            )
            verification.audit_index = receipt.index
            session.add(verification)
            await record_lookup(  # OpenLineage run event: names and outcomes, never values
                session,
                tenant_id,
                emitter=rt.lineage,
                provider_id=provider.id,
                claim_type=claim.type.value,
                at=now,
                found=result.found,
                schema_valid=True,
                status="succeeded",
                decision=decision.outcome.value,
                credential_issued=credential is not None,
                run_id=verification.id,
            )
            if credential is not None and status is not None:
                await rt.status_lists.bind(session, tenant_id, status, credential.id)
            if credential is not None:
                session.add(
                    IssuedCredential(
                        id=credential.id,
                        tenant_id=tenant_id,
                        verification_id=verification.id,
                        format=fmt.value,
                        key_id=credential.key_id,
                        digest=credential.digest,
                        valid_from=credential.valid_from,
                        valid_until=credential.valid_until,
                    )
                )
                session.add(
                    rt.credentials.issuance_row(
                        tenant_id, credential, verification_id=verification.id, refreshes=refreshes
                    )
                )
            body = _response(
                verification, receipt, credential.token if credential else None, fmt.value
            )
            if idempotency_key is not None:
                session.add(
                    IdempotencyRecord(
                        tenant_id=tenant_id,
                        scope=SCOPE,
                        key=idempotency_key,
                        request_hash=fingerprint,
                        status_code=201,
                        response=body,
                    )
                )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer as it did.
        if idempotency_key is None:
            raise
        async with rt.db.transaction(tenant_id, readonly=True) as session:
            replay = await find_replay(session, tenant_id, SCOPE, idempotency_key, fingerprint)
        if replay is None:
            raise
        return VerificationResult(replay.status_code, replay.response, replayed=True)

    VERIFICATIONS.labels(claim.type.value, "succeeded", decision.outcome.value).inc()
    if credential is not None:
        CREDENTIALS_ISSUED.labels(fmt.value).inc()
    log.info(
        "verification",
        verification_id=verification.id,
        provider_id=provider.id,
        claim_type=claim.type.value,
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


async def _record_failure(rt: Runtime, base: dict[str, Any], exc: PavilionError) -> None:
    # isinstance, not type(): subclasses such as ResidencyPreventedFailover map to their base.
    status = next(s for cls, s in _FAILURE_STATUS.items() if isinstance(exc, cls))
    verification = Verification(
        **base, id=new_id(), created_at=rt.clock(), status=status, decision=None, region=None
    )
    async with rt.db.transaction(base["tenant_id"]) as session:
        receipt = await rt.audit.append(
            session, base["tenant_id"], _audit_event(verification, None)
        )
        verification.audit_index = receipt.index
        session.add(verification)
        if isinstance(exc, ProviderBadResponse):  # the DP answered, but not to its schema
            await record_lookup(
                session,
                base["tenant_id"],
                emitter=rt.lineage,
                provider_id=base["provider_id"],
                claim_type=base["claim_type"],
                at=verification.created_at,
                found=False,
                schema_valid=False,
                status=status,
                decision=None,
                credential_issued=False,
                run_id=verification.id,
            )
    exc.extra.update({"verification_id": verification.id, "audit_index": receipt.index})
    VERIFICATIONS.labels(base["claim_type"], status, "none").inc()
    log.warning(
        "verification failed",
        verification_id=verification.id,
        provider_id=base["provider_id"],
        status=status,
    )


def _audit_event(verification: Verification, credential_digest: str | None) -> dict[str, Any]:
    """What the audit leaf commits to: ids, hashes and outcomes; never PII or free text."""
    return {
        "kind": "verification",
        "verification_id": verification.id,
        "provider_id": verification.provider_id,
        "claim": json.loads(verification.claim),
        "subject_ref": verification.subject_ref,
        "residency": verification.residency,
        "purpose_sha256": digest(verification.purpose),
        "region": verification.region,
        "status": verification.status,
        "decision": verification.decision,
        "credential_id": verification.credential_id,
        "credential_sha256": credential_digest,
        "at": verification.created_at.isoformat(),
    }


def _response(
    verification: Verification, receipt: AuditReceipt, credential: str | None, fmt: str
) -> dict[str, Any]:
    return VerificationResponse(
        id=verification.id,
        status=verification.status,
        decision=verification.decision,
        provider_id=verification.provider_id,
        region=verification.region,
        claim=json.loads(verification.claim),
        credential=credential,
        credential_format=fmt if credential else None,
        audit={"index": receipt.index, "leaf_hash": receipt.leaf_hash},
        created_at=verification.created_at.isoformat(),
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
        "decision": row.decision,
        "provider_id": row.provider_id,
        "region": row.region,
        "claim": json.loads(row.claim),
        "credential_id": row.credential_id,
        "audit": {"index": row.audit_index},
        "created_at": row.created_at.isoformat(),
    }
