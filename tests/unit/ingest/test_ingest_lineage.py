"""OpenLineage events (per batch, per lookup) and the graph drawn from them."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from ingest_support import NOW
from pavilion.ingest.lineage.emitter import LineageEmitter
from pavilion.ingest.lineage.events import batch_event, lookup_event
from pavilion.ingest.lineage.graph import LineageGraph, graphviz_available, links_of, render
from pavilion.ingest.lineage.model import CREDENTIALS, VERIFICATIONS, BatchLineage, roster_dataset


def _batch(status: str = "applied", error: str | None = None) -> BatchLineage:
    return BatchLineage(
        tenant_id="t1",
        provider_id="p1",
        batch_id="b1",
        run_id=str(uuid.uuid4()),
        status=status,
        reason=None if status == "applied" else "invalid-rows",
        at=NOW,
        input_bytes=1234,
        rows={"total": 3, "valid": 2, "invalid": 1, "applied": 2},
        quality_score=91.5,
        profile_version=2,
        input_sha256="a" * 64,
        output_sha256="b" * 64,
        source_fields=[("student_id", "string", "categories: pii"), ("dob", "date", None)],
        column_metrics={"student_id": {"nullCount": 0, "distinctCount": 3, "count": 3}},
        assertions=[
            {"assertion": "pattern", "column": "student_id", "success": False},
            {"assertion": "quality_score", "column": None, "success": True, "expected": ">= 80", "actual": "91.5"},
        ],
        mapping=[("subject_id", "student_id", "normalise: identifier"), ("birth_date", "dob", "identity")],
        canonical_types={"subject_id": "string", "birth_date": "date"},
        error=error,
    )  # fmt: skip


def test_a_batch_event_has_column_lineage_and_quality_facets(tmp_path: Path) -> None:
    file = tmp_path / "lineage" / "events.jsonl"
    emitter = LineageEmitter(file)
    event = emitter.emit(batch_event(_batch()))
    assert event["eventType"] == "COMPLETE"
    assert event["job"] == {
        "namespace": "pavilion://t1",
        "name": "ingest.roster_upload.p1",
        "facets": {},
    }
    source = event["inputs"][0]
    assert (source["namespace"], source["name"]) == ("dp://p1", "dp.p1.roster")
    metrics = source["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 3
    assert metrics["bytes"] == 1234
    assert metrics["columnMetrics"]["student_id"]["distinctCount"] == 3
    assertions = source["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"]: a["success"] for a in assertions} == {
        "pattern": False,
        "quality_score": True,
    }
    output = event["outputs"][0]
    assert output["name"] == roster_dataset("p1")
    lineage = output["facets"]["columnLineage"]["fields"]
    assert lineage["subject_id"]["inputFields"][0]["field"] == "student_id"
    assert (
        lineage["subject_id"]["inputFields"][0]["transformations"][0]["subtype"] == "TRANSFORMATION"
    )
    assert lineage["birth_date"]["transformationType"] == "IDENTITY"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert event["run"]["facets"]["pavilion_batch"]["qualityScore"] == 91.5
    written = [json.loads(line) for line in file.read_text().splitlines()]
    assert written[0]["run"]["runId"] == event["run"]["runId"]
    assert links_of(event) == [
        ("ingest.roster_upload.p1", "dp.p1.roster", "input"),
        ("ingest.roster_upload.p1", "pavilion.rosters.p1", "output"),
    ]


def test_a_failed_batch_is_a_fail_event_with_the_reason() -> None:
    event = LineageEmitter().emit(batch_event(_batch("rejected", error="3 of 3 rows are invalid")))
    assert event["eventType"] == "FAIL"
    assert event["run"]["facets"]["errorMessage"]["message"] == "3 of 3 rows are invalid"
    assert "outputStatistics" not in event["outputs"][0]["outputFacets"]


def test_a_lookup_event_traces_record_fields_to_the_decision_and_credential() -> None:
    event = LineageEmitter().emit(
        lookup_event(
            tenant_id="t1",
            provider_id="p1",
            claim_type="age_over",
            at=NOW,
            found=True,
            schema_valid=True,
            status="succeeded",
            decision="true",
            credential_issued=True,
            run_id=str(uuid.uuid4()),
        )
    )
    assert event["job"]["name"] == "verify.lookup.p1"
    decision = event["outputs"][0]["facets"]["columnLineage"]["fields"]["decision"]
    assert [f["field"] for f in decision["inputFields"]] == ["birth_date"]
    assert decision["inputFields"][0]["transformations"][0]["masking"] is True
    assert [o["name"] for o in event["outputs"]] == [VERIFICATIONS, CREDENTIALS]
    failed = LineageEmitter().emit(
        lookup_event(
            tenant_id="t1",
            provider_id="p1",
            claim_type="unknown",
            at=NOW,
            found=False,
            schema_valid=False,
            status="provider_bad_response",
            decision=None,
            credential_issued=False,
        )
    )
    assert failed["eventType"] == "FAIL"
    assert (
        failed["outputs"][0]["facets"]["columnLineage"]["fields"]["decision"]["inputFields"] == []
    )


def _graph() -> LineageGraph:
    return LineageGraph(
        {
            ("ingest.roster_upload.p1", "dp.p1.roster", "input"),
            ("ingest.roster_upload.p1", "pavilion.rosters.p1", "output"),
            ("privacy.encode.p1", "pavilion.rosters.p1", "input"),
            ("privacy.encode.p1", "pavilion.encoded_rosters.p1", "output"),
            ("verify.lookup.p2", "dp.p2.lookup", "input"),
            ("verify.lookup.p2", VERIFICATIONS, "output"),
        },
        {"dp.p1.roster": ["student_id"], "dp.p2.lookup": ["x"]},
    )


def test_the_graph_around_a_dataset_runs_up_and_down_stream() -> None:
    around = _graph().around("pavilion.rosters.p1")
    assert around.datasets == ["dp.p1.roster", "pavilion.encoded_rosters.p1", "pavilion.rosters.p1"]
    assert around.jobs == ["ingest.roster_upload.p1", "privacy.encode.p1"]
    assert around.columns == {"dp.p1.roster": ["student_id"]}
    shape = around.as_dict()
    assert {"from": "dp.p1.roster", "to": "ingest.roster_upload.p1"} in shape["edges"]
    assert {"from": "privacy.encode.p1", "to": "pavilion.encoded_rosters.p1"} in shape["edges"]
    dot = around.to_dot("pavilion.rosters.p1")
    assert dot.startswith("digraph lineage {")
    assert '"dataset dp.p1.roster" -> "job ingest.roster_upload.p1"' in dot
    assert "student_id\\l" in dot
    assert "rounded,filled,bold" in dot


def test_rendering_uses_graphviz_when_present_and_dot_text_when_absent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dot = _graph().to_dot()
    content, produced = render(dot, "svg")
    if shutil.which("dot"):
        assert graphviz_available()
        assert produced == "svg"
        assert b"<svg" in content
        png, kind = render(dot, "png")
        assert kind == "png"
        assert png.startswith(b"\x89PNG")
    else:
        assert produced == "dot"
        assert content.decode() == dot
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on this PATH
    assert not graphviz_available()
    assert render(dot, "svg") == (dot.encode(), "dot")
    assert render(dot, "dot") == (dot.encode(), "dot")


def test_repeated_lookup_events_equal_fully_built_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    spec = {
        "tenant_id": "t1",
        "provider_id": "p1",
        "claim_type": "student_status",
        "schema_valid": True,
        "status": "succeeded",
        "credential_issued": False,
        "found": True,
        "decision": "true",
    }
    emitter = LineageEmitter()
    first = emitter.emit_lookup(**spec, at=NOW, run_id=str(uuid.uuid4()))
    later_at = NOW + timedelta(seconds=5)
    run_id = str(uuid.uuid4())
    fast = emitter.emit_lookup(
        **{**spec, "found": False, "decision": "false"}, at=later_at, run_id=run_id
    )
    full = LineageEmitter().emit(
        lookup_event(**{**spec, "found": False, "decision": "false"}, at=later_at, run_id=run_id)
    )
    assert fast == full
    assert first["run"]["facets"]["pavilion_lookup"]["decision"] == "true"  # not mutated
    assert emitter.emit_lookup(**spec, at=NOW)["run"]["runId"] != first["run"]["runId"]
    monkeypatch.setattr("pavilion.ingest.lineage.emitter.LOOKUP_TEMPLATES", 1)
    emitter.emit_lookup(**{**spec, "claim_type": "membership"}, at=NOW)
    assert len(emitter._lookup_templates) == 1  # the cache stays bounded
    file = tmp_path / "events.jsonl"
    to_file = LineageEmitter(file)
    for _ in range(2):
        to_file.emit_lookup(**spec, at=NOW)
    assert len(file.read_text().splitlines()) == 2
