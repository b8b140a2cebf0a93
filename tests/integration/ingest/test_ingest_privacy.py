"""No raw PII in logs, metrics, lineage events, audit leaves or batch records of the pipeline;
and a lookup records a lineage event without a value from the record."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from connector_support import Api
from ingest_support import csv_bytes, profile, push
from pavilion.audit.models import AuditLeaf
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.ingest.models import LineageEvent, LineageLink, RosterBatch
from pavilion.observability.logging import configure_logging
from pavilion.synth.roster import StudentRecord


def _pii(record: StudentRecord) -> list[str]:
    return [
        record.student_id,
        record.email,
        f"{record.given_name} {record.family_name}",
        record.given_name.casefold() + " " + record.family_name.casefold(),
        record.birth_date.isoformat(),
    ]


async def _lineage(api: Api) -> list[dict[str, Any]]:
    async with api.rt.db.transaction(api.tenant_id) as session:
        rows = (
            await session.execute(select(LineageEvent).order_by(LineageEvent.event_time))
        ).scalars()
        return [json.loads(r.event) for r in rows]


async def test_the_pipeline_leaves_no_pii_outside_the_roster_and_quarantine(
    api: Api, roster: list[StudentRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", json_output=True)
    provider = await api.register_provider()
    provider_id = provider["id"]
    dp = api.auth("dp-admin")
    response = await api.client.post(
        f"/v1/providers/{provider_id}/mappings",
        content=yaml.safe_dump(profile(), allow_unicode=True),
        headers=dp | {"content-type": "application/yaml"},
    )
    assert response.status_code == 201
    subjects = roster[:20]
    assert (await push(api.client, dp, provider_id, csv_bytes(subjects))).status_code == 201
    bad = csv_bytes(subjects).replace(subjects[3].email.encode(), b"not-an-email")
    assert (await push(api.client, dp, provider_id, bad)).status_code == 422
    for record in subjects[:3]:  # lookups (the DP agent answers from the same roster)
        answer = await api.verify(
            provider_id, {"type": "student_status"}, {"student_id": record.student_id}
        )
        assert answer.status_code == 201, answer.text
    logging.getLogger("stdlib").warning("careless %s", subjects[0].email)

    logs = capsys.readouterr()
    metrics = (await api.client.get("/metrics", headers=api.auth("platform-admin"))).text
    async with api.rt.db.transaction(api.tenant_id) as session:
        leaves = [row.event for row in (await session.execute(select(AuditLeaf))).scalars()]
        batches = [
            json.dumps([b.quality, b.report, b.manifest, b.manifest_jws])
            for b in (await session.execute(select(RosterBatch))).scalars()
        ]
        links = [
            f"{link.job_name} {link.dataset}"
            for link in (await session.execute(select(LineageLink))).scalars()
        ]
    await api.rt.lookup_lineage.flush()  # lookups are counted, then written once per window
    events = await _lineage(api)
    haystacks = {
        "logs": logs.out + logs.err,
        "metrics": metrics,
        "audit": "\n".join(leaves),
        "batches": "\n".join(batches),
        "lineage": json.dumps(events, ensure_ascii=False) + "\n".join(links),
    }
    assert "roster upload" in haystacks["logs"]
    assert (
        f'pavilion_ingest_batches_total{{provider="{provider_id}",reason="invalid-rows",status="rejected"}} 1.0'
        in metrics
    )
    assert f'pavilion_ingest_rows_total{{fate="applied",provider="{provider_id}"}} 20.0' in metrics
    lookups = [e for e in events if "pavilion_lookup" in e["run"]["facets"]]
    assert len(events) - len(lookups) == 2  # two batches
    assert sum(e["run"]["facets"]["pavilion_lookup"]["lookups"] for e in lookups) == 3
    assert sum(1 for leaf in leaves if '"roster_upload"' in leaf) == 2
    for record in subjects:
        for value in _pii(record):
            for where, text in haystacks.items():
                assert value not in text, f"{value!r} leaked into {where}"


async def test_each_lookup_is_counted_in_a_lineage_event_of_its_outcome(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    ok = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, {"student_id": roster[0].student_id}
    )
    assert ok.status_code == 201

    record = dict(roster[1].as_json())
    record["birth_date"] = "yesterday"
    api.rt.provider_client = ProviderClient(
        timeout_seconds=2,
        connect_timeout_seconds=1,
        retry=RetryPolicy(0, 0.001),
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json={"found": True, "record": record})
        ),
    )
    broken = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, {"student_id": roster[1].student_id}
    )
    assert broken.status_code == 502
    assert broken.json()["field"] == "birth_date"
    assert await api.rt.lookup_lineage.flush() == 2  # one event per outcome of the window
    events = sorted(await _lineage(api), key=lambda e: e["eventType"])
    assert [e["eventType"] for e in events] == ["COMPLETE", "FAIL"]
    first = events[0]
    assert first["run"]["facets"]["pavilion_lookup"]["lookups"] == 1
    assert first["run"]["facets"]["pavilion_lookup"]["windowStart"] <= first["eventTime"]
    assert first["job"]["name"] == f"verify.lookup.{provider['id']}"
    assert first["run"]["facets"]["pavilion_lookup"]["schemaValid"] is True
    fields = first["outputs"][0]["facets"]["columnLineage"]["fields"]["decision"]["inputFields"]
    assert [f["field"] for f in fields] == ["birth_date"]
    assert events[1]["run"]["facets"]["pavilion_lookup"]["schemaValid"] is False
    assert events[1]["run"]["facets"]["pavilion_lookup"]["lookups"] == 1
    text = json.dumps(events)
    for value in (roster[0].student_id, roster[0].birth_date.isoformat(), "yesterday"):
        assert value not in text
    graph = await api.client.get("/v1/lineage/pavilion.verifications", headers=api.auth("auditor"))
    assert graph.status_code == 200
    assert f"dp.{provider['id']}.lookup" in {d["name"] for d in graph.json()["graph"]["datasets"]}
