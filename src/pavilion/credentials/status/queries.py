"""Status-list reads shared by more than one module: a list and its published entries (the
signed publication in ``publishing``, this connector's own verifiers in ``local_lists``), and
the lists of credential groups (``changes``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.states import published_states


async def find_list(
    session: AsyncSession, tenant_id: str, list_id: str, kind: str
) -> StatusList | None:
    """The tenant's list with this id and kind, or None."""
    found: StatusList | None = (
        await session.execute(
            select(StatusList).where(
                StatusList.tenant_id == tenant_id,
                StatusList.id == list_id,
                StatusList.kind == kind,
            )
        )
    ).scalar_one_or_none()
    return found


async def published_entries(
    session: AsyncSession, tenant_id: str, row: StatusList
) -> Sequence[Row[int, str]]:
    """``(idx, state)`` of every entry of the list's group whose state the list publishes."""
    return (
        await session.execute(
            select(StatusListEntry.idx, StatusListEntry.state).where(
                StatusListEntry.tenant_id == tenant_id,
                StatusListEntry.group_id == row.group_id,
                StatusListEntry.state.in_(published_states(row.kind, row.purpose)),
            )
        )
    ).all()


async def group_lists(
    session: AsyncSession, tenant_id: str, group_ids: Iterable[str]
) -> list[StatusList]:
    """Every list of these groups (a bitstring group has a revocation and a suspension list)."""
    return list(
        (
            await session.execute(
                select(StatusList).where(
                    StatusList.tenant_id == tenant_id,
                    StatusList.group_id.in_(set(group_ids)),
                )
            )
        ).scalars()
    )
