"""Lineage events and their dataset links in the database: stored in the caller's
transaction (with the roster upload or the verification they describe), read back as a graph
around a dataset and as recent events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import NotFound
from pavilion.ingest.lineage.emitter import LineageEmitter
from pavilion.ingest.lineage.graph import LineageGraph, links_of
from pavilion.ingest.models import LineageEvent, LineageLink
from pavilion.store.base import new_id


async def store_lineage(session: AsyncSession, tenant_id: str, event: dict[str, Any]) -> str:
    """Persist one serialised run event and its dataset links in the caller's transaction."""
    event_id = new_id()
    await session.execute(
        insert(LineageEvent).values(
            id=event_id,
            tenant_id=tenant_id,
            run_id=event["run"]["runId"],
            event_type=str(event.get("eventType") or "OTHER"),
            event_time=datetime.fromisoformat(event["eventTime"]),
            job_name=event["job"]["name"],
            event=json.dumps(event, sort_keys=True, separators=(",", ":")),
        )
    )
    links = links_of(event)
    if links:
        await session.execute(
            insert(LineageLink),
            [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "event_id": event_id,
                    "job_name": job,
                    "dataset": dataset,
                    "role": role,
                }
                for job, dataset, role in links
            ],
        )
    return event_id


async def lineage_graph(session: AsyncSession, tenant_id: str, dataset: str) -> LineageGraph:
    edges = {
        (r[0], r[1], r[2])
        for r in (
            await session.execute(
                select(LineageLink.job_name, LineageLink.dataset, LineageLink.role)
                .where(LineageLink.tenant_id == tenant_id)
                .distinct()
            )
        ).all()
    }
    graph = LineageGraph(edges)
    if dataset not in graph.datasets:
        raise NotFound(f"no lineage recorded for dataset {dataset!r}")
    graph = graph.around(dataset)
    graph.columns = await _columns(session, tenant_id, graph)
    return graph


async def _columns(
    session: AsyncSession, tenant_id: str, graph: LineageGraph
) -> dict[str, list[str]]:
    """Column names of each dataset, from the schema facet of its latest batch event."""
    columns: dict[str, list[str]] = {}
    jobs = [j for j in graph.jobs if j.startswith("ingest.")]
    if not jobs:
        return columns
    latest = (
        await session.execute(
            select(LineageEvent.job_name, LineageEvent.event)
            .where(LineageEvent.tenant_id == tenant_id, LineageEvent.job_name.in_(jobs))
            .order_by(LineageEvent.event_time.desc())
        )
    ).all()
    for _, text in latest:
        event = json.loads(text)
        for dataset in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
            fields = (dataset.get("facets") or {}).get("schema", {}).get("fields", [])
            if dataset["name"] not in columns and fields:
                columns[dataset["name"]] = [f["name"] for f in fields]
    return columns


async def lineage_events(
    session: AsyncSession, tenant_id: str, dataset: str, *, limit: int
) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(LineageEvent.event)
            .join(LineageLink, LineageLink.event_id == LineageEvent.id)
            .where(
                LineageEvent.tenant_id == tenant_id,
                LineageLink.tenant_id == tenant_id,
                LineageLink.dataset == dataset,
            )
            .order_by(LineageEvent.event_time.desc())
            .limit(limit)
        )
    ).scalars()
    return [json.loads(text) for text in rows]


async def record_lookup(
    session: AsyncSession,
    tenant_id: str,
    *,
    emitter: LineageEmitter,
    provider_id: str,
    claim_type: str,
    at: datetime,
    found: bool,
    schema_valid: bool,
    status: str,
    decision: str | None,
    credential_issued: bool,
    run_id: str | None = None,
) -> str:
    """One lookup's lineage event, stored in the verification's own transaction (no PII)."""
    event = emitter.emit_lookup(
        tenant_id=tenant_id,
        provider_id=provider_id,
        claim_type=claim_type,
        at=at,
        found=found,
        schema_valid=schema_valid,
        status=status,
        decision=decision,
        credential_issued=credential_issued,
        run_id=run_id,
    )
    return await store_lineage(session, tenant_id, event)
