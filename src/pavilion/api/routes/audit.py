"""The audit log: checkpoints, proofs and leaves for auditors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.audit import (
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    LeafOut,
    LeafPage,
)
from pavilion.api.schemas.base import INT32_MAX
from pavilion.errors import BadRequest
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=AUTHENTICATED)
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("/checkpoint")
async def latest_checkpoint(rt: RuntimeDep, who: Auditor) -> CheckpointOut:
    """The latest signed checkpoint (C2SP tlog-checkpoint, Ed25519 signed note)."""
    checkpoint = await rt.audit.checkpoint(who.tenant_id)
    return CheckpointOut(
        origin=rt.audit.origin(who.tenant_id),
        size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        note=checkpoint.note,
        verifier_key=rt.audit.verifier_key_for(who.tenant_id),
    )


@router.get("/checkpoint/note", response_class=PlainTextResponse)
async def latest_checkpoint_note(rt: RuntimeDep, who: Auditor) -> str:
    """The same checkpoint as a bare signed note, for tlog tooling."""
    return (await rt.audit.checkpoint(who.tenant_id)).note


@router.get("/proofs/inclusion")
async def inclusion_proof(
    rt: RuntimeDep,
    who: Auditor,
    index: Annotated[int, Query(ge=0, le=INT32_MAX)],
    tree_size: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> InclusionProofOut:
    proof = await rt.audit.inclusion(who.tenant_id, index, tree_size)
    return InclusionProofOut.model_validate(proof)


@router.get(
    "/proofs/consistency",
    responses=problem_responses(
        notes={
            400: "first is 0: RFC 9162 (2.1.4) defines consistency proofs from a tree of at "
            "least one leaf only"
        }
    ),
)
async def consistency_proof(
    rt: RuntimeDep,
    who: Auditor,
    first: Annotated[
        int,
        Query(ge=0, le=INT32_MAX, description="The older tree size: 1 or more (0 answers 400)."),
    ],
    second: Annotated[
        int, Query(ge=0, le=INT32_MAX, description="The newer tree size, at most the log's.")
    ],
) -> ConsistencyProofOut:
    """RFC 9162 PROOF(first, D[second]) for 0 < first <= second (empty when they are equal)."""
    if first == 0:
        raise BadRequest(
            "RFC 9162 defines no consistency proof from the empty tree (first must be at "
            "least 1): every tree extends the empty one",
            field="first",
        )
    proof = await rt.audit.consistency(who.tenant_id, first, second)
    return ConsistencyProofOut.model_validate(proof)


@router.get("/leaves")
async def list_leaves(
    rt: RuntimeDep,
    who: Auditor,
    start: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LeafPage:
    items = [
        LeafOut(**leaf) for leaf in await rt.audit.leaves(who.tenant_id, start=start, limit=limit)
    ]
    return LeafPage(items=items, next=items[-1].index + 1 if len(items) == limit else None)
