"""Differentially private releases of a tenant's verification events (a use case).

One transaction does all of it: read the events, compute the release with OpenDP, charge its
privacy loss to the tenant's ledger (refused, and nothing released, when the budget cannot
cover it), append the ledger entry and the signed receipt. The noisy values leave only after
that transaction commits.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from pavilion.audit.log import AuditLeafRef
from pavilion.observability.logging import get_logger
from pavilion.privacy import differential
from pavilion.privacy.budget import BudgetView, check_dataset
from pavilion.privacy.receipts import ReceiptDraft, sha256_hex
from pavilion.store.base import new_id
from pavilion.verification.claims import ClaimType, Outcome
from pavilion.verification.models import Verification

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)
#: Outcomes of a verification: its decision when it succeeded, else its failure status.
OUTCOMES: Final = (
    *(o.value for o in Outcome),
    "policy_denied",
    "provider_unavailable",
    "provider_bad_response",
)
NO_REGION: Final = "none"


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["verifications"] = "verifications"
    statistic: differential.Statistic
    mechanism: differential.Mechanism = differential.Mechanism.LAPLACE
    epsilon: float = Field(ge=differential.MIN_EPSILON, le=differential.MAX_EPSILON)
    delta: float = Field(default=0.0, ge=0, lt=1e-3, description="Gaussian only.")
    group_by: list[str] = Field(
        default_factory=list, max_length=4, description=", ".join(differential.DIMENSIONS)
    )
    value: str | None = Field(default=None, description="sum/mean: approved or age_threshold")
    bounds: tuple[float, float] | None = Field(default=None, description="Clamping bounds.")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    since: datetime | None = None
    until: datetime | None = None

    def spec(self) -> differential.ReleaseSpec:
        return differential.ReleaseSpec(
            statistic=self.statistic,
            mechanism=self.mechanism,
            epsilon=self.epsilon,
            group_by=tuple(self.group_by),
            delta=self.delta,
            value=self.value,
            bounds=self.bounds,
            alpha=self.alpha,
        )


def _event(row: Any) -> differential.Event:
    outcome = row.decision if row.status == "succeeded" and row.decision else row.status
    threshold = json.loads(row.claim).get("threshold")
    return differential.Event(
        claim_type=row.claim_type,
        provider_id=row.provider_id,
        region=row.region or NO_REGION,
        outcome=outcome,
        approved=1 if row.decision == Outcome.TRUE.value else 0,
        age_threshold=threshold if isinstance(threshold, int) else None,
    )


async def public_domains(rt: Runtime, tenant_id: str) -> dict[str, list[str]]:
    """Group keys from public metadata: claim types, outcomes, the tenant's DPs and regions."""
    providers = await rt.providers.list(tenant_id, limit=10_000, after=None)
    regions = {e.region for p in providers for e in p.endpoints} | {NO_REGION}
    return {
        "claim_type": [c.value for c in ClaimType],
        "outcome": list(OUTCOMES),
        "provider_id": [p.id for p in providers],
        "region": sorted(regions),
    }


class PrivateRelease(differential.ReleaseView):
    """A release as published: the statistic, its receipt and the budget left after it."""

    release_id: str
    dataset: str
    budget: BudgetView
    receipt_id: str
    audit: AuditLeafRef


async def run_release(rt: Runtime, tenant_id: str, body: ReleaseIn) -> PrivateRelease:
    check_dataset(body.dataset)
    spec = body.spec()
    domains = await public_domains(rt, tenant_id)
    release_id = new_id()
    receipt_id = new_id()
    now = rt.clock()
    async with rt.db.transaction(tenant_id) as session:
        query = select(
            Verification.claim_type,
            Verification.provider_id,
            Verification.region,
            Verification.status,
            Verification.decision,
            Verification.claim,
        ).where(Verification.tenant_id == tenant_id)
        if body.since is not None:
            query = query.where(Verification.created_at >= body.since)
        if body.until is not None:
            query = query.where(Verification.created_at < body.until)
        events = [_event(row) for row in (await session.execute(query)).all()]
        released = await asyncio.to_thread(differential.release, spec, events, domains)
        charge = await rt.privacy.budgets.charge(
            session,
            tenant_id,
            body.dataset,
            epsilon=released.cost.epsilon,
            delta=released.cost.delta,
            now=now,
        )
        result = released.as_dict()
        query_description = spec.canonical() | {
            "dataset": body.dataset,
            "since": body.since.isoformat() if body.since else None,
            "until": body.until.isoformat() if body.until else None,
        }
        budget = {
            "dataset": body.dataset,
            "epsilon": released.cost.epsilon,
            "delta": released.cost.delta,
            "rho": released.cost.rho,
            "after": charge.after.as_dict(),
        }
        receipt = await rt.privacy.receipts.issue(
            session,
            tenant_id,
            ReceiptDraft(
                kind="differential.release",
                mechanism=f"OpenDP {spec.mechanism.value} ({spec.statistic.value})",
                parameters=query_description | {"release_id": release_id},
                inputs_sha256=sha256_hex(query_description),
                outputs_sha256=sha256_hex(result),
                budget=budget,
                receipt_id=receipt_id,
            ),
        )
        rt.privacy.budgets.record(
            session,
            tenant_id,
            charge,
            release_id=release_id,
            statistic=spec.statistic.value,
            mechanism=spec.mechanism.value,
            rho=released.cost.rho,
            query_sha256=sha256_hex(query_description),
            receipt_id=receipt.id,
            now=now,
        )
    log.info(
        "private release",
        release_id=release_id,
        statistic=spec.statistic.value,
        mechanism=spec.mechanism.value,
        groups=len(result["groups"]),
        receipt_id=receipt.id,
    )
    return PrivateRelease(
        **result,
        release_id=release_id,
        dataset=body.dataset,
        budget=charge.after.as_dict(),
        receipt_id=receipt.id,
        audit=AuditLeafRef(index=receipt.audit_index, leaf_hash=receipt.leaf_hash),
    )
