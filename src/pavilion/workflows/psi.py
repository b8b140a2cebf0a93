"""Private set membership between the connector and a DP agent (use cases across domains).

* :func:`psi_decide` answers a verification's claim from the DP's pushed tag sets: the subject's
  identifiers are blinded here, evaluated by the DP agent (VOPRF, proof checked), and the
  result looked up in the pushed tags. The DP never sees who is asked about; the connector
  never holds the roster itself.
* :func:`run_batch_psi` does the same for a list (a merchant's customers against a club's
  members) and returns the cardinality, or the matching items to their owner.
* :func:`commit_tag_set` activates a pushed tag set and writes its receipt.

Every run writes a signed privacy receipt (ids and hashes) to the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.connect.attempts import LookupResult
from pavilion.connect.residency import load_adequacy
from pavilion.connect.routing import plan_route
from pavilion.errors import Conflict, InvalidRequest
from pavilion.observability.logging import get_logger
from pavilion.privacy import psi
from pavilion.privacy.psi_client import MAX_BATCH
from pavilion.privacy.receipts import ReceiptDraft, sha256_hex
from pavilion.privacy.tag_sets import ActiveTagSet
from pavilion.providers.types import ProviderConnection
from pavilion.verification.claims import Claim, ClaimType, Decision, Outcome

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)
MECHANISM: Final = "VOPRF(ristretto255-SHA512) + sorted truncated tags"
MAX_BATCH_ITEMS: Final = 20_000
#: Lists longer than PARALLEL_MIN are split into this many concurrent batches.
PARALLEL_BATCHES: Final = max(2, os.cpu_count() or 2)
PARALLEL_MIN: Final = 500


def claim_set(claim: Claim) -> str:
    """The pushed set that answers a claim; age needs a predicate proof, not a set."""
    if claim.type is ClaimType.STUDENT_STATUS:
        return psi.STUDENT_SET
    if claim.type is ClaimType.MEMBERSHIP:
        assert claim.group is not None
        return psi.membership_set(claim.group)
    raise InvalidRequest(
        "age_over cannot be answered from a pushed set without holding birth dates; use "
        "the zero-knowledge predicate endpoint POST /v1/privacy/zkp/presentations",
        field="mode",
    )


class TagSetParams(TypedDict):
    """Which version of which set answered, and how often it answers wrongly."""

    set: str
    version: int
    key_id: str
    count: int
    tag_bytes: int
    false_positive_rate: float


class AuditIndex(TypedDict):
    index: int


class BatchPsiResult(TypedDict):
    """A batch PSI's answer; ``intersection`` only when the caller asked for the items."""

    provider_id: str
    set: TagSetParams
    items: int
    cardinality: int
    expected_false_positives: float
    region: str
    intersection: NotRequired[list[str]]
    receipt_id: str
    audit: AuditIndex


@dataclass(frozen=True)
class ActivatedTagSet:
    """A committed tag set, now the active version, and the receipt of its activation."""

    id: str
    provider_id: str
    set: str
    version: int
    count: int
    tag_bytes: int
    false_positive_rate: float
    status: Literal["active"]
    receipt_id: str


@dataclass(frozen=True)
class _Asked:
    tag_set: ActiveTagSet
    input: bytes


async def _evaluate(
    rt: Runtime,
    tenant_id: str,
    provider: ProviderConnection,
    endpoints: Sequence[Any],
    asked: Sequence[_Asked],
) -> tuple[list[bytes], str, int, list[bytes]]:
    """Blind, have the DP evaluate (grouped by OPRF key), verify, finalize, in order."""
    outputs: list[bytes | None] = [None] * len(asked)
    blinded_all: list[bytes] = []
    region, attempts = "", 0
    by_key: dict[str, list[int]] = {}
    for i, a in enumerate(asked):
        by_key.setdefault(a.tag_set.key_id, []).append(i)

    async def one_batch(
        key_id: str, public_key: bytes, chunk: list[int]
    ) -> tuple[str, int, tuple[bytes, ...]]:
        query = await asyncio.to_thread(
            psi.blind_inputs, public_key, [asked[i].input for i in chunk]
        )
        answer = await rt.privacy.evaluator.evaluate(
            provider, endpoints, tenant_id, key_id, query.blinded_elements
        )
        finals = await asyncio.to_thread(
            psi.finalize_outputs, query, answer.evaluated_elements, answer.proof
        )
        for i, output in zip(chunk, finals, strict=True):
            outputs[i] = output
        return answer.region, answer.attempts, query.blinded_elements

    batches = []
    for key_id, positions in by_key.items():
        public_key = asked[positions[0]].tag_set.public_key
        # Large lists go as parallel batches: blinding, the DP's evaluation and the proof
        # checks of each batch run in threads (libsodium releases the GIL), so cores add up.
        size = min(MAX_BATCH, max(PARALLEL_MIN, math.ceil(len(positions) / PARALLEL_BATCHES)))
        for start in range(0, len(positions), size):
            batches.append(one_batch(key_id, public_key, positions[start : start + size]))
    for batch_region, batch_attempts, blinded in await asyncio.gather(*batches):
        region, attempts = batch_region, attempts + batch_attempts
        blinded_all.extend(blinded)  # in batch order, whichever finished first
    return [o for o in outputs if o is not None], region, attempts, blinded_all


async def _active(
    rt: Runtime, tenant_id: str, provider_id: str, set_name: str, *, required: bool
) -> ActiveTagSet | None:
    tag_set = await rt.privacy.tag_sets.active(tenant_id, provider_id, set_name)
    if tag_set is None and required:
        raise Conflict(
            f"the provider has not pushed its {set_name!r} tag set; the DP agent pushes it "
            "with `pavilion privacy tag-set push`, or use mode 'lookup'",
            extra={"field": "mode"},
        )
    return tag_set


async def psi_decide(
    rt: Runtime,
    tenant_id: str,
    provider: ProviderConnection,
    endpoints: Any,
    *,
    claim: Claim,
    identifiers: Mapping[str, str],
) -> tuple[LookupResult, Decision]:
    """A verification's decision from the DP's pushed sets, without the DP learning who."""
    set_name = claim_set(claim)
    claimed = await _active(rt, tenant_id, provider.id, set_name, required=True)
    assert claimed is not None
    everyone = await _active(rt, tenant_id, provider.id, psi.ROSTER_SET, required=False)
    asked = [_Asked(claimed, psi.oprf_input(set_name, identifiers))]
    if everyone is not None:
        asked.append(_Asked(everyone, psi.oprf_input(psi.ROSTER_SET, identifiers)))
    allowed = list(getattr(endpoints, "allowed", endpoints))
    outputs, region, attempts, blinded = await _evaluate(rt, tenant_id, provider, allowed, asked)
    in_claim = outputs[0] in claimed.encoded
    known = outputs[1] in everyone.encoded if everyone is not None else None
    if in_claim:
        outcome = Outcome.TRUE
    elif known:
        outcome = Outcome.FALSE
    else:
        outcome = Outcome.UNKNOWN
    holds = outcome is Outcome.TRUE
    if claim.type is ClaimType.STUDENT_STATUS:
        subject_claims: dict[str, Any] = {"studentStatus": {"current": holds}}
    else:
        subject_claims = {"membership": {"group": claim.group, "member": holds}}
    subject_claims = subject_claims if outcome is not Outcome.UNKNOWN else {}
    tag_sets = [a.tag_set for a in asked]
    async with rt.db.transaction(tenant_id) as session:
        receipt = await rt.privacy.receipts.issue(
            session,
            tenant_id,
            ReceiptDraft(
                kind="psi.lookup",
                mechanism=MECHANISM,
                parameters={
                    "provider_id": provider.id,
                    "sets": [_set_params(t) for t in tag_sets],
                    "elements": len(blinded),
                    "verified_proof": True,
                },
                inputs_sha256=hashlib.sha256(b"".join(blinded)).hexdigest(),
                outputs_sha256=sha256_hex({"outcome": outcome.value}),
            ),
        )
    log.info(
        "psi lookup",
        provider_id=provider.id,
        set_version=claimed.version,
        outcome=outcome.value,
        receipt_id=receipt.id,
    )
    result = LookupResult(
        found=outcome is not Outcome.UNKNOWN,
        record=None,
        as_of=claimed.activated_at.isoformat(),
        region=region,
        attempts=attempts,
    )
    return result, Decision(outcome, subject_claims)


def _set_params(tag_set: ActiveTagSet) -> TagSetParams:
    return TagSetParams(
        set=tag_set.set_name,
        version=tag_set.version,
        key_id=tag_set.key_id,
        count=tag_set.encoded.count,
        tag_bytes=tag_set.encoded.tag_bytes,
        false_positive_rate=tag_set.fpr,
    )


# --------------------------------------------------------------------------- batch PSI

ItemText = Annotated[str, StringConstraints(min_length=1, max_length=320)]


class BatchPsiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str = Field(min_length=1, max_length=36)
    set: str = Field(
        min_length=1, max_length=200, description="e.g. 'roster' or 'membership:chess club'."
    )
    identifier_kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["email"])
    items: list[ItemText] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    output: Literal["cardinality", "intersection"] = Field(
        default="cardinality",
        description="cardinality: only how many items are in the set; intersection: which.",
    )
    residency: str = Field(pattern=r"^[A-Z]{2}(-[A-Z]{2})?$")
    purpose: str = Field(min_length=1, max_length=200)


async def provider_answering(
    rt: Runtime,
    session: AsyncSession,
    tenant_id: str,
    provider_id: str,
    kinds: Sequence[ClaimType] = tuple(ClaimType),
) -> ProviderConnection:
    """The provider, which must answer at least one of ``kinds``."""
    for kind in kinds[:-1]:
        try:
            return await rt.providers.connection(session, tenant_id, provider_id, kind.value)
        except InvalidRequest:
            continue
    return await rt.providers.connection(session, tenant_id, provider_id, kinds[-1].value)


def _kinds_for_set(set_name: str) -> tuple[ClaimType, ...]:
    if set_name.startswith(psi.MEMBERSHIP_PREFIX):
        return (ClaimType.MEMBERSHIP,)
    if set_name == psi.STUDENT_SET:
        return (ClaimType.STUDENT_STATUS,)
    return tuple(ClaimType)


async def run_batch_psi(rt: Runtime, tenant_id: str, request: BatchPsiRequest) -> BatchPsiResult:
    set_name = psi.check_set_name(request.set)
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        provider = await provider_answering(
            rt, session, tenant_id, request.provider_id, _kinds_for_set(set_name)
        )
        adequacy = await load_adequacy(session, tenant_id)
    tag_set = await _active(rt, tenant_id, provider.id, set_name, required=True)
    assert tag_set is not None
    route = plan_route(provider.endpoints, request.residency, rt.settings.node_region, adequacy)
    inputs = psi.oprf_inputs(set_name, request.identifier_kind, request.items)
    outputs, region, _, blinded = await _evaluate(
        rt, tenant_id, provider, route.allowed, [_Asked(tag_set, x) for x in inputs]
    )
    matches = [i for i, output in enumerate(outputs) if output in tag_set.encoded]
    async with rt.db.transaction(tenant_id) as session:
        receipt = await rt.privacy.receipts.issue(
            session,
            tenant_id,
            ReceiptDraft(
                kind="psi.batch",
                mechanism=MECHANISM,
                parameters={
                    "provider_id": provider.id,
                    "sets": [_set_params(tag_set)],
                    "elements": len(blinded),
                    "output": request.output,
                    "purpose_sha256": sha256_hex(request.purpose),
                    "verified_proof": True,
                },
                inputs_sha256=hashlib.sha256(b"".join(blinded)).hexdigest(),
                outputs_sha256=sha256_hex({"cardinality": len(matches), "matches": matches}),
            ),
        )
    log.info(
        "psi batch",
        provider_id=provider.id,
        items=len(request.items),
        output=request.output,
        receipt_id=receipt.id,
    )
    result = BatchPsiResult(
        provider_id=provider.id,
        set=_set_params(tag_set),
        items=len(request.items),
        cardinality=len(matches),
        expected_false_positives=tag_set.fpr * (len(request.items) - len(matches)),
        region=region,
        receipt_id=receipt.id,
        audit=AuditIndex(index=receipt.audit_index),
    )
    if request.output == "intersection":
        result["intersection"] = [request.items[i] for i in matches]
    return result


# --------------------------------------------------------------------------- tag sets


async def commit_tag_set(rt: Runtime, tenant_id: str, upload_id: str) -> ActivatedTagSet:
    """Activate a pushed tag set and write its receipt, in one transaction."""
    async with rt.db.transaction(tenant_id) as session:
        committed = await rt.privacy.tag_sets.commit(session, tenant_id, upload_id)
        manifest = committed.manifest
        receipt = await rt.privacy.receipts.issue(
            session,
            tenant_id,
            ReceiptDraft(
                kind="psi.tag_set",
                mechanism=MECHANISM,
                parameters={
                    "provider_id": manifest.provider_id,
                    "set": manifest.set_name,
                    "version": manifest.version,
                    "previous_version": committed.previous_version,
                    "key_id": manifest.key_id,
                    "count": manifest.count,
                    "tag_bytes": manifest.tag_bytes,
                    "false_positive_rate": manifest.fpr,
                },
                inputs_sha256=sha256_hex(committed.token),
                outputs_sha256=manifest.sha256,
            ),
        )
    return ActivatedTagSet(
        id=committed.id,
        provider_id=manifest.provider_id,
        set=manifest.set_name,
        version=manifest.version,
        count=manifest.count,
        tag_bytes=manifest.tag_bytes,
        false_positive_rate=manifest.fpr,
        status="active",
        receipt_id=receipt.id,
    )
