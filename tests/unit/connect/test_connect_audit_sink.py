"""The connection-event writer: off the request path, bounded, and never killed by the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from connect_support import metric
from pavilion.connect.audit import AuditLogSink
from pavilion.connect.events import ConnectionEvent, endpoint_label


class FakeDatabase:
    def __init__(self) -> None:
        self.fail_for: set[str] = set()
        self.transactions: list[str] = []

    @asynccontextmanager
    async def transaction(self, tenant_id: str) -> AsyncIterator[str]:
        self.transactions.append(tenant_id)
        if tenant_id in self.fail_for:
            raise RuntimeError("database down")
        yield tenant_id


class FakeAudit:
    def __init__(self) -> None:
        self.leaves: list[tuple[str, dict[str, Any]]] = []

    async def append(self, session: str, tenant_id: str, event: dict[str, Any]) -> None:
        self.leaves.append((tenant_id, event))


def _event(tenant: str, kind: str = "failover") -> ConnectionEvent:
    return ConnectionEvent(
        tenant, "p1", kind, region="eu-west", endpoint="h:1", data={"to_region": "eu-central"}
    )


async def test_events_are_batched_per_tenant_and_survive_a_failing_database() -> None:
    db, audit = FakeDatabase(), FakeAudit()
    sink = AuditLogSink(db, audit)  # type: ignore[arg-type]
    db.fail_for = {"t2"}
    sink.emit(_event(""))  # no tenant: logged only
    sink.emit(_event("t1"))
    sink.emit(_event("t2"))
    sink.emit(_event("t1", "failback"))
    await sink.flush()
    assert [(t, e["event"]) for t, e in audit.leaves] == [("t1", "failover"), ("t1", "failback")]
    assert audit.leaves[0][1]["kind"] == "connection"
    assert audit.leaves[0][1]["to_region"] == "eu-central"
    assert sink.written == 2
    db.fail_for = set()
    sink.emit(_event("t2"))  # the writer is still alive after the failure
    await sink.flush()
    assert audit.leaves[-1][0] == "t2"
    await sink.aclose()


async def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    db, audit = FakeDatabase(), FakeAudit()
    sink = AuditLogSink(db, audit, max_queue=2)  # type: ignore[arg-type]
    before = metric("pavilion_connect_audit_events_dropped_total")
    for _ in range(5):
        sink.emit(_event("t1"))
    assert metric("pavilion_connect_audit_events_dropped_total") - before == 3
    await asyncio.wait_for(sink.flush(), 5)
    assert len(audit.leaves) == 2
    await sink.aclose()


def test_endpoint_labels_name_host_and_port_only() -> None:
    assert endpoint_label("https://dp.example/agent?x=1") == "dp.example:443"
    assert endpoint_label("http://127.0.0.1:8700") == "127.0.0.1:8700"
    assert endpoint_label("http://[::1]:9") == "[::1]:9"
