"""The audit log: checkpoints, proofs and leaves for auditors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from pavilion.api.deps import RuntimeDep, require
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("/checkpoint")
async def latest_checkpoint(rt: RuntimeDep, who: Auditor) -> dict[str, Any]:
    """The latest signed checkpoint (C2SP tlog-checkpoint, Ed25519 signed note)."""
    checkpoint = await rt.audit.checkpoint(who.tenant_id)
    return {
        "origin": rt.audit.origin(who.tenant_id),
        "size": checkpoint.size,
        "root_hash": checkpoint.root_hash,
        "note": checkpoint.note,
        "verifier_key": rt.audit.verifier_key,
    }


@router.get("/checkpoint/note", response_class=PlainTextResponse)
async def latest_checkpoint_note(rt: RuntimeDep, who: Auditor) -> str:
    """The same checkpoint as a bare signed note, for tlog tooling."""
    return (await rt.audit.checkpoint(who.tenant_id)).note


@router.get("/proofs/inclusion")
async def inclusion_proof(
    rt: RuntimeDep,
    who: Auditor,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return await rt.audit.inclusion(who.tenant_id, index, tree_size)


@router.get("/proofs/consistency")
async def consistency_proof(
    rt: RuntimeDep,
    who: Auditor,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> dict[str, Any]:
    return await rt.audit.consistency(who.tenant_id, first, second)


@router.get("/leaves")
async def list_leaves(
    rt: RuntimeDep,
    who: Auditor,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    items = await rt.audit.leaves(who.tenant_id, start=start, limit=limit)
    return {"items": items, "next": items[-1]["index"] + 1 if len(items) == limit else None}
