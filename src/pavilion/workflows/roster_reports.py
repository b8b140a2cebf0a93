"""Reading back what roster uploads recorded: batches (their integrity checked), quarantined
rows, the quality trend, and the lineage graph around a dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from pavilion.errors import PavilionError
from pavilion.ingest import batch_store, profile_store
from pavilion.ingest.batch_store import BatchView, QuarantinedRowView
from pavilion.ingest.lineage import store as lineage_store
from pavilion.ingest.lineage.graph import GraphView

if TYPE_CHECKING:
    from pavilion.runtime import Runtime


class Quarantine(TypedDict):
    """A page of a batch's invalid rows, with their reasons."""

    batch_id: str
    rows_invalid: int
    items: list[QuarantinedRowView]


class ProviderQuality(batch_store.QualityTrend):
    """A provider's quality trend and the minimum score its profile asks for."""

    provider_id: str
    threshold: float | None


class Lineage(TypedDict):
    """The graph around a dataset (also as DOT) and its recent OpenLineage run events."""

    dataset: str
    graph: GraphView
    dot: str
    events: list[dict[str, Any]]


async def get_batch(rt: Runtime, tenant_id: str, batch_id: str) -> BatchView:
    """A batch with its integrity checked: signed manifest, and stored records if current."""
    async with rt.db.transaction(tenant_id) as session:
        row = await batch_store.load_batch(session, tenant_id, batch_id)
        integrity = await batch_store.verify_batch(
            session, tenant_id, row, rt.keystore.public_jwks("audit-signing"), rt.rosters
        )
    return batch_store.batch_out(row, integrity=integrity)


async def list_batches(
    rt: Runtime, tenant_id: str, provider_id: str, *, limit: int = 50
) -> list[BatchView]:
    async with rt.db.transaction(tenant_id) as session:
        rows = await batch_store.list_batches(session, tenant_id, provider_id, limit=limit)
    return [batch_store.batch_out(r) for r in rows]


async def quarantine(
    rt: Runtime, tenant_id: str, batch_id: str, *, limit: int = 100, after_row: int = 0
) -> Quarantine:
    async with rt.db.transaction(tenant_id) as session:
        row = await batch_store.load_batch(session, tenant_id, batch_id)
        sealer = await rt.tenant_keys.sealer(session, tenant_id)
        items = await batch_store.quarantine_of(
            session, sealer, batch_id, limit=limit, after_row=after_row
        )
    return Quarantine(batch_id=row.id, rows_invalid=row.rows_invalid, items=items)


async def quality(
    rt: Runtime, tenant_id: str, provider_id: str, *, limit: int = 50
) -> ProviderQuality:
    async with rt.db.transaction(tenant_id) as session:
        points = await batch_store.quality_trend(session, tenant_id, provider_id, limit=limit)
        try:
            threshold: float | None = (
                await profile_store.get_profile(session, tenant_id, provider_id)
            ).profile.quality.min_score
        except PavilionError:
            threshold = None
    return ProviderQuality(
        provider_id=provider_id, threshold=threshold, **batch_store.trend(points)
    )


async def lineage(rt: Runtime, tenant_id: str, dataset: str, *, limit: int = 20) -> Lineage:
    # Lookups are counted in memory and written once per window: write what this worker has
    # counted so far, so the graph shows every lookup made through it.
    await rt.lookup_lineage.flush()
    async with rt.db.transaction(tenant_id) as session:
        graph = await lineage_store.lineage_graph(session, tenant_id, dataset)
        events = await lineage_store.lineage_events(session, tenant_id, dataset, limit=limit)
    return Lineage(
        dataset=dataset,
        graph=graph.as_dict(),
        dot=graph.to_dot(dataset),
        events=events,
    )
