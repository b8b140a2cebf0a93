"""AnonCreds credentials for holders with their own wallet (the credential format, issue 3).

``offer`` hands out a credential offer for a DP's credential definition. ``issue`` answers a
wallet's credential request: the subject is looked up at the DP (residency routing applies),
the attributes are derived from the record, a registry slot is reserved (a new registry opens
when the active one is full) and the credential is signed into it. ``revoke`` flips slots in
the accumulator and publishes one delta per registry. The audit log records ids, slots and
the subject's keyed pseudonym, never attribute values.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from pavilion.audit.log import AuditLeafRef
from pavilion.connect.residency import load_adequacy
from pavilion.connect.routing import plan_route
from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.types import CredentialOffer
from pavilion.errors import InvalidRequest
from pavilion.ingest.validation import check_lookup_record
from pavilion.observability.logging import get_logger
from pavilion.privacy import zkp
from pavilion.verification.schemas import SubjectRequest
from pavilion.workflows.psi import provider_answering
from pavilion.workflows.verify import _canonical_identifiers

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str = Field(min_length=1, max_length=36)


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=1, max_length=36)
    credential_request: dict[str, Any] = Field(description="The wallet's AnonCreds request.")
    subject: SubjectRequest
    purpose: str = Field(min_length=1, max_length=200)
    group: str | None = Field(
        default=None, max_length=200, description="The club the membership attributes cover."
    )


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential_ids: list[str] = Field(min_length=1, max_length=1000)


class IssuedCredential(TypedDict):
    """The signed AnonCreds credential and the registry slot it occupies."""

    credential_id: str
    credential: dict[str, Any]
    cred_def_id: str
    rev_reg_def_id: str
    rev_reg_index: int
    tails_hash: str
    audit: AuditLeafRef


class PublishedDelta(TypedDict):
    registry_id: str
    rev_reg_def_id: str
    timestamp: int
    revoked_indices: list[int]


class Revocation(TypedDict):
    """What was revoked, and the status list each registry published for it."""

    revoked: list[str]
    deltas: list[PublishedDelta]
    audit: AuditLeafRef


async def offer(rt: Runtime, tenant_id: str, body: OfferIn) -> CredentialOffer:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        provider = await provider_answering(rt, session, tenant_id, body.provider_id)
    return await rt.privacy.anoncreds.offer(tenant_id, provider.id)


async def issue(rt: Runtime, tenant_id: str, body: IssueIn) -> IssuedCredential:
    service = rt.privacy.anoncreds
    issuer, offer_json = await service.take_offer(tenant_id, body.offer_id)
    request_json = json.dumps(body.credential_request)
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        provider = await provider_answering(rt, session, tenant_id, issuer.provider_id)
        subject_ref = await rt.tenant_keys.subject_ref(
            session, tenant_id, _canonical_identifiers(body.subject.identifiers)
        )
        adequacy = await load_adequacy(session, tenant_id)
    route = plan_route(
        provider.endpoints, body.subject.residency, rt.settings.node_region, adequacy
    )
    result = await rt.provider_client.lookup(provider, route, body.subject.identifiers)
    if result.record is None:
        raise InvalidRequest(
            "the provider does not know this subject; nothing was issued", field="subject"
        )
    check_lookup_record(provider.record_schema, result.record)
    values = zkp.attribute_values(result.record, body.group)
    slot = await service.allocate(
        tenant_id, issuer, subject_ref=subject_ref, purpose="holder", details={}
    )
    try:
        credential_json = await asyncio.to_thread(
            engine.issue_credential,
            issuer.material,
            offer_json,
            request_json,
            values,
            rev_reg_def_json=slot.rev_reg_def_json,
            rev_reg_private_json=slot.private_json,
            status_list_json=slot.status_list_json,
            index=slot.index,
        )
    except engine.AnoncredsFailure as exc:  # the slot stays spent: indices are never reused
        raise InvalidRequest(
            f"the credential request does not answer this offer: {exc.detail}",
            field="credential_request",
        ) from exc
    async with rt.db.transaction(tenant_id) as session:
        receipt = await rt.audit.append(
            session,
            tenant_id,
            {
                "kind": "anoncreds_issued",
                "credential_id": slot.credential_id,
                "provider_id": issuer.provider_id,
                "cred_def_id": issuer.material.cred_def_id,
                "rev_reg_def_id": slot.rev_reg_def_id,
                "rev_index": slot.index,
                "subject_ref": subject_ref,
            },
        )
    log.info(
        "anoncreds issued",
        credential_id=slot.credential_id,
        provider_id=issuer.provider_id,
        rev_index=slot.index,
    )
    return IssuedCredential(
        credential_id=slot.credential_id,
        credential=json.loads(credential_json),
        cred_def_id=issuer.material.cred_def_id,
        rev_reg_def_id=slot.rev_reg_def_id,
        rev_reg_index=slot.index,
        tails_hash=slot.tails_hash,
        audit=receipt.ref(),
    )


async def revoke(rt: Runtime, tenant_id: str, body: RevokeIn) -> Revocation:
    published = await rt.privacy.anoncreds.revoke(tenant_id, body.credential_ids)
    async with rt.db.transaction(tenant_id) as session:
        receipt = await rt.audit.append(
            session,
            tenant_id,
            {
                "kind": "anoncreds_revoked",
                "credential_ids": sorted(body.credential_ids),
                "deltas": [
                    {"rev_reg_def_id": p.rev_reg_def_id, "timestamp": p.timestamp}
                    for p in published
                ],
            },
        )
    return Revocation(
        revoked=sorted(body.credential_ids),
        deltas=[
            PublishedDelta(
                registry_id=p.registry_id,
                rev_reg_def_id=p.rev_reg_def_id,
                timestamp=p.timestamp,
                revoked_indices=p.revoked,
            )
            for p in published
        ],
        audit=receipt.ref(),
    )
