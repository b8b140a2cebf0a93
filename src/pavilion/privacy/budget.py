"""The privacy-budget ledger: one limit per tenant and dataset, charged atomically.

OpenDP accounts privacy loss in memory only, per process; this ledger is the durable one.
Amounts are integers (nano-epsilon, femto-delta) so repeated charges never drift, costs are
rounded up and limits are never exceeded:

* the charge is one conditional ``UPDATE ... SET spent = spent + cost WHERE spent + cost <=
  limit RETURNING ...`` on the tenant's budget row. PostgreSQL takes the row lock and
  re-checks the condition against the committed row before writing, so two concurrent
  requests can never both pass a check that only one of them fits in; SQLite runs every
  write transaction under ``BEGIN IMMEDIATE``, so they are serialised outright;
* a period reset (day, week, month) is an ``UPDATE ... WHERE period_start < :current``
  in the same transaction, idempotent under the same row lock;
* every charge appends a ledger entry (append-only, also at the database privilege level)
  in the caller's transaction, together with the release's receipt and audit leaf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, TypedDict

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog
from pavilion.errors import InvalidRequest
from pavilion.privacy.errors import BudgetExhausted, BudgetNotConfigured
from pavilion.privacy.models import (
    DELTA_UNITS,
    EPSILON_UNITS,
    PrivacyBudget,
    PrivacyLedgerEntry,
)
from pavilion.store.base import new_id
from pavilion.store.database import Database

DATASETS: Final = ("verifications",)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    NEVER = "never"


def period_start(period: Period, now: datetime) -> datetime:
    """The start (UTC) of the budget period containing ``now``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return midnight
    if period is Period.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if period is Period.MONTH:
        return midnight.replace(day=1)
    return _EPOCH


def epsilon_units(epsilon: float) -> int:
    return math.ceil(epsilon * EPSILON_UNITS - 1e-6)


def delta_units(delta: float) -> int:
    return math.ceil(delta * DELTA_UNITS - 1e-6)


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise InvalidRequest(
            f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}", field="dataset"
        )
    return dataset


class BudgetAmount(TypedDict):
    limit: float
    spent: float
    remaining: float


class BudgetView(TypedDict):
    """A budget as reported: limits, spent and remaining in this period."""

    dataset: str
    period: str
    period_start: str
    epsilon: BudgetAmount
    delta: BudgetAmount


class LedgerEntry(TypedDict):
    """One charge to a budget: the release it paid for and what it cost."""

    release_id: str
    statistic: str
    mechanism: str
    epsilon: float
    delta: float
    rho: float | None
    period_start: str
    receipt_id: str
    created_at: str


@dataclass(frozen=True)
class BudgetState:
    dataset: str
    period: str
    period_start: datetime
    epsilon_limit: int
    delta_limit: int
    spent_epsilon: int
    spent_delta: int

    def as_dict(self) -> BudgetView:
        return BudgetView(
            dataset=self.dataset,
            period=self.period,
            period_start=self.period_start.isoformat(),
            epsilon=BudgetAmount(
                limit=self.epsilon_limit / EPSILON_UNITS,
                spent=self.spent_epsilon / EPSILON_UNITS,
                remaining=(self.epsilon_limit - self.spent_epsilon) / EPSILON_UNITS,
            ),
            delta=BudgetAmount(
                limit=self.delta_limit / DELTA_UNITS,
                spent=self.spent_delta / DELTA_UNITS,
                remaining=(self.delta_limit - self.spent_delta) / DELTA_UNITS,
            ),
        )


def _state(row: PrivacyBudget, now: datetime) -> BudgetState:
    current = period_start(Period(row.period), now)
    stale = _aware(row.period_start) < current
    return BudgetState(
        dataset=row.dataset,
        period=row.period,
        period_start=current if stale else _aware(row.period_start),
        epsilon_limit=row.epsilon_limit,
        delta_limit=row.delta_limit,
        spent_epsilon=0 if stale else row.spent_epsilon,
        spent_delta=0 if stale else row.spent_delta,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Charge:
    """A charge made in the caller's transaction, with the budget as it stands after."""

    ledger_id: str
    epsilon: int
    delta: int
    after: BudgetState


class BudgetLedger:
    async def configure(
        self,
        db: Database,
        tenant_id: str,
        dataset: str,
        *,
        epsilon: float,
        delta: float,
        period: Period,
        now: datetime,
        audit: AuditLog | None = None,
    ) -> BudgetState:
        """Create or change a budget's limits; what was spent this period stays spent. With
        ``audit``, the change is a leaf of the tenant's audit log in the same transaction."""
        check_dataset(dataset)
        if not (0 < epsilon <= 1000) or not math.isfinite(epsilon):
            raise InvalidRequest("epsilon must be in (0, 1000]", field="epsilon")
        if not (0 <= delta < 1):
            raise InvalidRequest("delta must be in [0, 1)", field="delta")
        async with db.transaction(tenant_id) as session:
            row = await self._row(session, tenant_id, dataset, lock=True)
            if row is None:
                row = PrivacyBudget(
                    id=new_id(),
                    tenant_id=tenant_id,
                    dataset=dataset,
                    period=period.value,
                    period_start=period_start(period, now),
                    spent_epsilon=0,
                    spent_delta=0,
                    epsilon_limit=0,
                    delta_limit=0,
                )
                session.add(row)
            elif row.period != period.value:
                row.period = period.value
            row.epsilon_limit = math.floor(epsilon * EPSILON_UNITS + 1e-6)
            row.delta_limit = math.floor(delta * DELTA_UNITS + 1e-6)
            row.updated_at = now
            await session.flush()
            if audit is not None:
                await audit.append(
                    session,
                    tenant_id,
                    {
                        "kind": "privacy_budget_set",
                        "dataset": dataset,
                        "epsilon": epsilon,
                        "delta": delta,
                        "period": period.value,
                        "at": now.isoformat(),
                    },
                )
            return _state(row, now)

    async def state(self, db: Database, tenant_id: str, dataset: str, now: datetime) -> BudgetState:
        check_dataset(dataset)
        async with db.transaction(tenant_id, readonly=True) as session:
            row = await self._row(session, tenant_id, dataset, lock=False)
        if row is None:
            raise BudgetNotConfigured(_not_configured(dataset))
        return _state(row, now)

    async def entries(
        self, db: Database, tenant_id: str, dataset: str, *, limit: int
    ) -> list[LedgerEntry]:
        async with db.transaction(tenant_id, readonly=True) as session:
            rows = (
                (
                    await session.execute(
                        select(PrivacyLedgerEntry)
                        .where(
                            PrivacyLedgerEntry.tenant_id == tenant_id,
                            PrivacyLedgerEntry.dataset == dataset,
                        )
                        .order_by(PrivacyLedgerEntry.created_at.desc(), PrivacyLedgerEntry.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        return [
            LedgerEntry(
                release_id=r.release_id,
                statistic=r.statistic,
                mechanism=r.mechanism,
                epsilon=r.epsilon / EPSILON_UNITS,
                delta=r.delta / DELTA_UNITS,
                rho=r.rho,
                period_start=_aware(r.period_start).isoformat(),
                receipt_id=r.receipt_id,
                created_at=_aware(r.created_at).isoformat(),
            )
            for r in rows
        ]

    async def spent_in_ledger(
        self, db: Database, tenant_id: str, dataset: str, since: datetime
    ) -> tuple[int, int]:
        """The sums of the ledger's entries since ``since`` (to audit the running totals)."""
        async with db.transaction(tenant_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(PrivacyLedgerEntry.epsilon), 0),
                        func.coalesce(func.sum(PrivacyLedgerEntry.delta), 0),
                    ).where(
                        PrivacyLedgerEntry.tenant_id == tenant_id,
                        PrivacyLedgerEntry.dataset == dataset,
                        PrivacyLedgerEntry.period_start >= since,
                    )
                )
            ).one()
        return int(row[0]), int(row[1])

    async def charge(
        self,
        session: AsyncSession,
        tenant_id: str,
        dataset: str,
        *,
        epsilon: float,
        delta: float,
        now: datetime,
    ) -> Charge:
        """Spend (epsilon, delta) in the caller's transaction, or raise BudgetExhausted."""
        row = await self._row(session, tenant_id, dataset, lock=False)
        if row is None:
            raise BudgetNotConfigured(_not_configured(dataset))
        current = period_start(Period(row.period), now)
        await session.execute(
            update(PrivacyBudget)
            .where(
                PrivacyBudget.tenant_id == tenant_id,
                PrivacyBudget.dataset == dataset,
                PrivacyBudget.period_start < current,
            )
            .values(spent_epsilon=0, spent_delta=0, period_start=current)
            .execution_options(synchronize_session=False)
        )
        cost_e, cost_d = epsilon_units(epsilon), delta_units(delta)
        result = await session.execute(
            update(PrivacyBudget)
            .where(
                PrivacyBudget.tenant_id == tenant_id,
                PrivacyBudget.dataset == dataset,
                PrivacyBudget.spent_epsilon + cost_e <= PrivacyBudget.epsilon_limit,
                PrivacyBudget.spent_delta + cost_d <= PrivacyBudget.delta_limit,
            )
            .values(
                spent_epsilon=PrivacyBudget.spent_epsilon + cost_e,
                spent_delta=PrivacyBudget.spent_delta + cost_d,
                updated_at=now,
            )
            .returning(
                PrivacyBudget.period,
                PrivacyBudget.period_start,
                PrivacyBudget.epsilon_limit,
                PrivacyBudget.delta_limit,
                PrivacyBudget.spent_epsilon,
                PrivacyBudget.spent_delta,
            )
            .execution_options(synchronize_session=False)
        )
        charged = result.one_or_none()
        if charged is None:
            fresh = await self._row(session, tenant_id, dataset, lock=False, refresh=True)
            assert fresh is not None
            state = _state(fresh, now).as_dict()
            raise BudgetExhausted(
                f"this release costs epsilon {epsilon:g}, delta {delta:g}; the {dataset} "
                f"budget has epsilon {state['epsilon']['remaining']:g}, delta "
                f"{state['delta']['remaining']:g} left until the period resets",
                extra={"budget": state},
            )
        after = BudgetState(
            dataset,
            charged.period,
            _aware(charged.period_start),
            charged.epsilon_limit,
            charged.delta_limit,
            charged.spent_epsilon,
            charged.spent_delta,
        )
        return Charge(new_id(), cost_e, cost_d, after)

    def record(
        self,
        session: AsyncSession,
        tenant_id: str,
        charge: Charge,
        *,
        release_id: str,
        statistic: str,
        mechanism: str,
        rho: float | None,
        query_sha256: str,
        receipt_id: str,
        now: datetime,
    ) -> None:
        """Append the charge's ledger entry (same transaction as the charge)."""
        session.add(
            PrivacyLedgerEntry(
                id=charge.ledger_id,
                tenant_id=tenant_id,
                dataset=charge.after.dataset,
                period_start=charge.after.period_start,
                release_id=release_id,
                statistic=statistic,
                mechanism=mechanism,
                epsilon=charge.epsilon,
                delta=charge.delta,
                rho=rho,
                query_sha256=query_sha256,
                receipt_id=receipt_id,
                created_at=now,
            )
        )

    async def _row(
        self,
        session: AsyncSession,
        tenant_id: str,
        dataset: str,
        *,
        lock: bool,
        refresh: bool = False,
    ) -> PrivacyBudget | None:
        query = select(PrivacyBudget).where(
            PrivacyBudget.tenant_id == tenant_id, PrivacyBudget.dataset == dataset
        )
        if lock:
            query = query.with_for_update()
        if refresh:
            query = query.execution_options(populate_existing=True)
        return (await session.execute(query)).scalar_one_or_none()


def _not_configured(dataset: str) -> str:
    return (
        f"no privacy budget is configured for {dataset}; a tenant admin sets one with "
        f"PUT /v1/privacy/budgets/{dataset} or `pavilion privacy budget set`"
    )
