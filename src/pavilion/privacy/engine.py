"""The privacy engine's services, built once per runtime (see ``Runtime.privacy``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pavilion.credentials.anoncreds.service import AnoncredsConfig, AnoncredsService
from pavilion.privacy.budget import BudgetLedger
from pavilion.privacy.psi_client import OprfEvaluator
from pavilion.privacy.receipts import ReceiptService
from pavilion.privacy.tag_sets import TagSetService

if TYPE_CHECKING:
    from pavilion.runtime import Runtime


@dataclass
class PrivacyEngine:
    tag_sets: TagSetService
    evaluator: OprfEvaluator
    budgets: BudgetLedger
    receipts: ReceiptService
    anoncreds: AnoncredsService

    async def aclose(self) -> None:
        await self.evaluator.aclose()


def build_privacy_engine(rt: Runtime) -> PrivacyEngine:
    settings = rt.settings

    def clock() -> datetime:
        return rt.clock()

    return PrivacyEngine(
        tag_sets=TagSetService(rt.db, clock),
        evaluator=OprfEvaluator(timeout_seconds=settings.provider_timeout_seconds * 2),
        budgets=BudgetLedger(),
        receipts=ReceiptService(
            rt.keystore.signer("audit-signing"),
            rt.audit,
            policy_version=settings.privacy_policy_version,
            clock=clock,
        ),
        anoncreds=AnoncredsService(
            rt.db,
            rt.tenant_keys,
            AnoncredsConfig(
                tails_dir=settings.data_dir / "anoncreds-tails",
                issuer_base=settings.issuer_id,
                registry_capacity=settings.anoncreds_registry_capacity,
            ),
            clock=clock,
        ),
    )
