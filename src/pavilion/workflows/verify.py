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
from datetime import timedelta
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pavilion.audit.log import AuditReceipt, digest
from pavilion.connect.routing import allowed_endpoints
from pavilion.credentials.jwt_vc import issue_jwt_vc
from pavilion.credentials.models import IssuedCredential
from pavilion.errors import (
    NotFound,
    PavilionError,
    PolicyDenied,
    ProviderBadResponse,
    ProviderUnavailable,
)
from pavilion.observability.logging import get_logger
from pavilion.observability.metrics import CREDENTIALS_ISSUED, VERIFICATIONS
from pavilion.runtime import Runtime
from pavilion.store.base import new_id
from pavilion.store.idempotency import IdempotencyRecord, find_replay
from pavilion.verification.claims import Outcome, decide
from pavilion.verification.models import Verification
from pavilion.verification.schemas import VerificationRequest, VerificationResponse

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


_validators: dict[str, Draft202012Validator] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Compiled validators, one per distinct schema (schemas rarely change)."""
    key = json.dumps(schema, sort_keys=True)
    if key not in _validators:
        _validators[key] = Draft202012Validator(schema)
    return _validators[key]


def check_record(schema: dict[str, Any], record: dict[str, Any]) -> None:
    """Raise ProviderBadResponse naming the first field that breaks the DP's declared schema."""
    error = next(iter(_validator(schema).iter_errors(record)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        raise ProviderBadResponse(
            f"the provider's record breaks its declared schema at {where}: {error.validator} "
            "constraint failed",
            extra={"field": where},
        )


async def run_verification(
    rt: Runtime, tenant_id: str, request: VerificationRequest, idempotency_key: str | None
) -> VerificationResult:
    fingerprint = request_hash(request)
    if idempotency_key is not None:
        async with rt.db.transaction(tenant_id) as session:
            replay = await find_replay(session, tenant_id, SCOPE, idempotency_key, fingerprint)
        if replay is not None:
            return VerificationResult(replay.status_code, replay.response, replayed=True)

    claim = request.claim.to_claim()
    async with rt.db.transaction(tenant_id) as session:
        provider = await rt.providers.connection(
            session, tenant_id, request.provider_id, claim.type.value
        )
        subject_ref = await rt.tenant_keys.subject_ref(
            session, tenant_id, _canonical_identifiers(request.subject.identifiers)
        )

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
        endpoints = allowed_endpoints(
            provider.endpoints, request.subject.residency, rt.settings.node_region
        )
        result = await rt.provider_client.lookup(provider, endpoints, request.subject.identifiers)
        if result.record is not None:
            check_record(provider.record_schema, result.record)
        decision = decide(claim, result.record, rt.clock().date())
    except (PolicyDenied, ProviderUnavailable, ProviderBadResponse) as exc:
        await _record_failure(rt, base, exc)
        raise

    now = rt.clock()
    credential = None
    if decision.outcome is Outcome.TRUE:
        credential = await issue_jwt_vc(
            signer=rt.keystore.signer("credential-signing"),
            issuer=rt.settings.issuer_id,
            claim_type=claim.type.value,
            subject_claims=decision.subject_claims,
            issued_at=now,
            ttl=timedelta(seconds=rt.settings.credential_ttl_seconds),
            evidence={
                "type": "DataProviderAttestation",
                "provider": provider.id,
                "asOf": result.as_of,
            },
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
            if credential is not None:
                session.add(
                    IssuedCredential(
                        id=credential.id,
                        tenant_id=tenant_id,
                        verification_id=verification.id,
                        format=request.format,
                        key_id=credential.key_id,
                        digest=credential.digest,
                        valid_from=credential.valid_from,
                        valid_until=credential.valid_until,
                    )
                )
            body = _response(
                verification, receipt, credential.token if credential else None, request.format
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
        async with rt.db.transaction(tenant_id) as session:
            replay = await find_replay(session, tenant_id, SCOPE, idempotency_key, fingerprint)
        if replay is None:
            raise
        return VerificationResult(replay.status_code, replay.response, replayed=True)

    VERIFICATIONS.labels(claim.type.value, "succeeded", decision.outcome.value).inc()
    if credential is not None:
        CREDENTIALS_ISSUED.labels(request.format).inc()
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
    status = _FAILURE_STATUS[type(exc)]
    verification = Verification(
        **base, id=new_id(), created_at=rt.clock(), status=status, decision=None, region=None
    )
    async with rt.db.transaction(base["tenant_id"]) as session:
        receipt = await rt.audit.append(
            session, base["tenant_id"], _audit_event(verification, None)
        )
        verification.audit_index = receipt.index
        session.add(verification)
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
    async with rt.db.transaction(tenant_id) as session:
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
