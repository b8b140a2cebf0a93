"""OpenLineage run events per batch and per lookup, and the lineage graph drawn from them.

Events are built with openlineage-python and emitted through an ``OpenLineageClient`` whose
transport keeps them in process (the service then stores them with the batch, in the same
transaction) and, when ``PAVILION_LINEAGE_FILE`` is set, also appends them to a file with the
library's file transport. No lineage server is needed.

Datasets: ``dp.<provider>.roster`` and ``dp.<provider>.lookup`` (what a DP sends, namespace
``dp://<provider>``), ``pavilion.rosters.<provider>`` (canonical roster),
``pavilion.verifications`` and ``pavilion.credentials`` (namespace ``pavilion://<tenant>``).
Events carry names, types, counts, digests and outcomes: never a value from a record.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attr
import graphviz  # type: ignore[import-untyped]
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    datasource_dataset,
    error_message_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.transport import Config, Transport

from pavilion import __version__

PRODUCER: Final = f"https://pavilion.example/connector/{__version__}"
_FACET_SCHEMA: Final = "https://pavilion.example/openlineage/facets/1-0-0/"


def dp_namespace(provider_id: str) -> str:
    return f"dp://{provider_id}"


def tenant_namespace(tenant_id: str) -> str:
    return f"pavilion://{tenant_id}"


def roster_source(provider_id: str) -> str:
    return f"dp.{provider_id}.roster"


def lookup_source(provider_id: str) -> str:
    return f"dp.{provider_id}.lookup"


def roster_dataset(provider_id: str) -> str:
    return f"pavilion.rosters.{provider_id}"


#: Distinct lookup event shapes kept (tenants x providers x claim types x outcome kinds).
LOOKUP_TEMPLATES: Final = 10_000
VERIFICATIONS: Final = "pavilion.verifications"
CREDENTIALS: Final = "pavilion.credentials"

#: The record fields each claim type reads (column lineage of a lookup).
CLAIM_INPUTS: Final = {
    "student_status": ("enrolment_status",),
    "age_over": ("birth_date",),
    "membership": ("memberships",),
}


@attr.define
class PavilionBatchRunFacet(RunFacet):
    """What a roster batch run decided: ids, counts, score and digests (no values)."""

    batchId: str
    providerId: str
    status: str
    reason: str | None
    rows: dict[str, int]
    qualityScore: float | None
    profileVersion: int | None
    inputSha256: str
    outputSha256: str

    @staticmethod
    def _get_schema() -> str:
        return _FACET_SCHEMA + "PavilionBatchRunFacet.json"


@attr.define
class PavilionLookupRunFacet(RunFacet):
    """What a lookup run decided: the claim type, schema validity and the outcome."""

    providerId: str
    claimType: str
    recordFound: bool
    schemaValid: bool
    status: str
    decision: str | None

    @staticmethod
    def _get_schema() -> str:
        return _FACET_SCHEMA + "PavilionLookupRunFacet.json"


class InProcessTransport(Transport):
    """Keeps emitted events (as JSON-ready dicts) until the caller takes them."""

    kind = "pavilion-in-process"
    config_class = Config

    def __init__(self, config: Config | None = None) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._lock = threading.Lock()

    def emit(self, event: Any) -> None:
        with self._lock:
            self._events.append(Serde.to_dict(event))

    def take(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            mine = [e for e in self._events if e["run"]["runId"] == run_id]
            for event in mine:
                self._events.remove(event)
        return mine


class LineageEmitter:
    """An OpenLineage client over the in-process transport (plus a file, if configured)."""

    def __init__(self, file: Path | None = None) -> None:
        self.transport = InProcessTransport()
        self._file: FileTransport | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = FileTransport(FileConfig(log_file_path=str(file), append=True))
        self._client = OpenLineageClient(
            transport=self.transport, config={"facets": {"environment_variables": []}}
        )

        self._lookup_templates: dict[tuple[Any, ...], dict[str, Any]] = {}

    def emit(self, event: RunEvent) -> dict[str, Any]:
        """Emit and return the serialised event (what the service stores)."""
        self._client.emit(event)
        if self._file is not None:
            self._file.emit(event)
        taken = self.transport.take(event.run.runId)
        return taken[-1] if taken else Serde.to_dict(event)

    def emit_lookup(self, **spec: Any) -> dict[str, Any]:
        """A lookup's event (see ``lookup_event``), on the verification hot path.

        The first event of each shape (tenant, provider, claim type, outcome kind) goes through
        the OpenLineage client; later ones reuse its serialised form with their own run id,
        time and outcome (building and serialising the attrs objects costs about 0.4 ms). With
        a lineage file configured every event takes the full path.
        """
        run_id = spec.get("run_id") or str(uuid.uuid4())
        shape = (
            spec["tenant_id"],
            spec["provider_id"],
            spec["claim_type"],
            spec["schema_valid"],
            spec["status"] == "succeeded",
            spec["credential_issued"],
        )
        template = self._lookup_templates.get(shape)
        if template is None or self._file is not None:
            event = self.emit(lookup_event(**{**spec, "run_id": run_id}))
            if len(self._lookup_templates) >= LOOKUP_TEMPLATES:
                self._lookup_templates.clear()
            self._lookup_templates[shape] = event
            return event
        facet = {
            **template["run"]["facets"]["pavilion_lookup"],
            "recordFound": spec["found"],
            "status": spec["status"],
            "decision": spec["decision"],
        }
        run = {**template["run"], "runId": run_id, "facets": {**template["run"]["facets"]}}
        run["facets"]["pavilion_lookup"] = facet
        return {**template, "eventTime": _time(spec["at"]), "run": run}


# -- event builders (pure) -------------------------------------------------------------------


def _time(at: datetime) -> str:
    return at.isoformat()


def _schema_facet(
    fields: Iterable[tuple[str, str, str | None]],
) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d)
            for n, t, d in fields
        ]
    )


@dataclass(frozen=True)
class BatchLineage:
    """Everything a batch's run event needs, free of record values."""

    tenant_id: str
    provider_id: str
    batch_id: str
    run_id: str
    status: str
    reason: str | None
    at: datetime
    input_bytes: int
    rows: dict[str, int]
    quality_score: float | None
    profile_version: int | None
    input_sha256: str
    output_sha256: str
    source_fields: list[tuple[str, str, str | None]] = field(default_factory=list)
    column_metrics: dict[str, dict[str, int]] = field(default_factory=dict)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    mapping: list[tuple[str, str, str]] = field(default_factory=list)
    canonical_types: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def batch_event(spec: BatchLineage) -> RunEvent:
    source_ns = dp_namespace(spec.provider_id)
    source_name = roster_source(spec.provider_id)
    metrics = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
        rowCount=spec.rows.get("total", 0),
        bytes=spec.input_bytes,
        columnMetrics={
            name: data_quality_metrics_input_dataset.ColumnMetrics(
                nullCount=m["nullCount"], distinctCount=m["distinctCount"], count=m["count"]
            )
            for name, m in spec.column_metrics.items()
        },
    )
    assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=a["assertion"],
                success=bool(a["success"]),
                column=a.get("column"),
                expected=a.get("expected"),
                actual=a.get("actual"),
                severity="error",
            )
            for a in spec.assertions
        ]
    )
    inputs = [
        InputDataset(
            namespace=source_ns,
            name=source_name,
            facets={
                "schema": _schema_facet(spec.source_fields),
                "dataSource": datasource_dataset.DatasourceDatasetFacet(
                    name=f"provider {spec.provider_id}", uri=source_ns
                ),
            },
            inputFacets={"dataQualityMetrics": metrics, "dataQualityAssertions": assertions},
        )
    ]
    column_lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            target: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=source_ns,
                        name=source_name,
                        field=source,
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type="DIRECT",
                                subtype="IDENTITY"
                                if description == "identity"
                                else "TRANSFORMATION",
                                description=description,
                                masking=False,
                            )
                        ],
                    )
                ],
                transformationDescription=description,
                transformationType="IDENTITY" if description == "identity" else "TRANSFORMATION",
            )
            for target, source, description in spec.mapping
        }
    )
    output_facets: dict[str, Any] = {}
    if spec.status == "applied":
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=spec.rows.get("applied", 0)
            )
        )
    outputs = [
        OutputDataset(
            namespace=tenant_namespace(spec.tenant_id),
            name=roster_dataset(spec.provider_id),
            facets={
                "schema": _schema_facet(
                    (target, spec.canonical_types.get(target, "string"), None)
                    for target, _, _ in spec.mapping
                ),
                "columnLineage": column_lineage,
            },
            outputFacets=output_facets,
        )
    ]
    run_facets: dict[str, Any] = {
        "pavilion_batch": PavilionBatchRunFacet(
            batchId=spec.batch_id,
            providerId=spec.provider_id,
            status=spec.status,
            reason=spec.reason,
            rows=spec.rows,
            qualityScore=spec.quality_score,
            profileVersion=spec.profile_version,
            inputSha256=spec.input_sha256,
            outputSha256=spec.output_sha256,
        )
    }
    if spec.error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=spec.error, programmingLanguage="python"
        )
    return RunEvent(
        eventType=RunState.COMPLETE if spec.status == "applied" else RunState.FAIL,
        eventTime=_time(spec.at),
        run=Run(runId=spec.run_id, facets=run_facets),
        job=Job(
            namespace=tenant_namespace(spec.tenant_id),
            name=f"ingest.roster_push.{spec.provider_id}",
        ),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )


def lookup_event(
    *,
    tenant_id: str,
    provider_id: str,
    claim_type: str,
    at: datetime,
    found: bool,
    schema_valid: bool,
    status: str,
    decision: str | None,
    credential_issued: bool,
    run_id: str | None = None,
) -> RunEvent:
    """One lookup's run: DP answer -> decision (and credential); no identifier, no value."""
    source_ns = dp_namespace(provider_id)
    source_name = lookup_source(provider_id)
    used = CLAIM_INPUTS.get(claim_type, ())
    decision_lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "decision": column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=source_ns,
                        name=source_name,
                        field=name,
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type="DIRECT",
                                subtype="TRANSFORMATION",
                                description=f"{claim_type} decision",
                                masking=True,
                            )
                        ],
                    )
                    for name in used
                ]
            )
        }
    )
    namespace = tenant_namespace(tenant_id)
    outputs = [
        OutputDataset(
            namespace=namespace, name=VERIFICATIONS, facets={"columnLineage": decision_lineage}
        )
    ]
    if credential_issued:
        outputs.append(
            OutputDataset(
                namespace=namespace,
                name=CREDENTIALS,
                facets={
                    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                        fields={
                            "credentialSubject": column_lineage_dataset.Fields(
                                inputFields=[
                                    column_lineage_dataset.InputField(
                                        namespace=namespace, name=VERIFICATIONS, field="decision"
                                    )
                                ]
                            )
                        }
                    )
                },
            )
        )
    assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion="record_schema", success=schema_valid, severity="error"
            )
        ]
    )
    return RunEvent(
        eventType=RunState.COMPLETE if status == "succeeded" else RunState.FAIL,
        eventTime=_time(at),
        run=Run(
            runId=run_id or str(uuid.uuid4()),
            facets={
                "pavilion_lookup": PavilionLookupRunFacet(
                    providerId=provider_id,
                    claimType=claim_type,
                    recordFound=found,
                    schemaValid=schema_valid,
                    status=status,
                    decision=decision,
                )
            },
        ),
        job=Job(namespace=namespace, name=f"verify.lookup.{provider_id}"),
        inputs=[
            InputDataset(
                namespace=source_ns,
                name=source_name,
                inputFacets={"dataQualityAssertions": assertions},
            )
        ],
        outputs=outputs,
        producer=PRODUCER,
    )


def links_of(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job, dataset, role) edges of a serialised event."""
    job = str(event["job"]["name"])
    edges = [(job, str(d["name"]), "input") for d in event.get("inputs") or []]
    edges += [(job, str(d["name"]), "output") for d in event.get("outputs") or []]
    return edges


# -- the graph -------------------------------------------------------------------------------


@dataclass
class LineageGraph:
    """Datasets and jobs; an edge runs dataset -> job (input) or job -> dataset (output)."""

    edges: set[tuple[str, str, str]]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def around(self, dataset: str) -> LineageGraph:
        """Everything upstream and downstream of a dataset."""
        forward: dict[str, set[str]] = {}
        backward: dict[str, set[str]] = {}
        for job, name, role in self.edges:
            src, dst = (name, f"job:{job}") if role == "input" else (f"job:{job}", name)
            forward.setdefault(src, set()).add(dst)
            backward.setdefault(dst, set()).add(src)
        keep: set[str] = {dataset}
        for links in (forward, backward):
            queue = [dataset]
            while queue:
                node = queue.pop()
                for nxt in links.get(node, ()):
                    if nxt not in keep:
                        keep.add(nxt)
                        queue.append(nxt)
        edges = {
            (job, name, role)
            for job, name, role in self.edges
            if name in keep and f"job:{job}" in keep
        }
        return LineageGraph(edges, {k: v for k, v in self.columns.items() if k in keep})

    @property
    def datasets(self) -> list[str]:
        return sorted({name for _, name, _ in self.edges})

    @property
    def jobs(self) -> list[str]:
        return sorted({job for job, _, _ in self.edges})

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": [{"name": d, "columns": self.columns.get(d, [])} for d in self.datasets],
            "jobs": self.jobs,
            "edges": [
                {"from": name, "to": job} if role == "input" else {"from": job, "to": name}
                for job, name, role in sorted(self.edges)
            ],
        }

    def to_dot(self, focus: str | None = None) -> str:
        dot = graphviz.Digraph("lineage", graph_attr={"rankdir": "LR", "fontname": "Helvetica"})
        for name in self.datasets:
            columns = self.columns.get(name, [])
            label = name if not columns else name + "\\n" + "\\l".join(columns) + "\\l"
            dot.node(
                f"dataset {name}",
                label=label,
                shape="box",
                style="rounded,filled,bold" if name == focus else "rounded,filled",
                fillcolor="#dbeafe" if name.startswith("pavilion.") else "#fef3c7",
            )
        for job in self.jobs:
            dot.node(f"job {job}", label=job, shape="ellipse", style="filled", fillcolor="#e5e7eb")
        for job, name, role in sorted(self.edges):
            if role == "input":
                dot.edge(f"dataset {name}", f"job {job}")
            else:
                dot.edge(f"job {job}", f"dataset {name}")
        return str(dot.source)


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render(dot_source: str, fmt: str) -> tuple[bytes, str]:
    """(bytes, format actually produced): SVG/PNG through Graphviz's ``dot``, else DOT text."""
    if fmt != "dot":
        try:
            return graphviz.Source(dot_source).pipe(format=fmt), fmt
        except graphviz.ExecutableNotFound:
            pass
    return dot_source.encode("utf-8"), "dot"
