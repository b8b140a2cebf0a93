"""The OpenLineage run events, built with openlineage-python (pure): one per roster upload
and one per lookup, with Pavilion's own run facets.

Importing this module imports openlineage (about 0.4 s and an HTTP stack): only the emitter
does, when it builds its first event.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import attr
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
from openlineage.client.transport.transport import Config, Transport

from pavilion.ingest.lineage.model import (
    CLAIM_INPUTS,
    CREDENTIALS,
    PRODUCER,
    VERIFICATIONS,
    BatchLineage,
    dp_namespace,
    lookup_job,
    lookup_source,
    roster_dataset,
    roster_source,
    tenant_namespace,
    upload_job,
)

_FACET_SCHEMA: Final = "https://pavilion.example/openlineage/facets/1-0-0/"


@attr.define
class PavilionBatchRunFacet(RunFacet):
    """What a roster upload run decided: ids, counts, score and digests (no values)."""

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
    #: Lookups of this outcome counted in the window that starts at ``windowStart``.
    lookups: int = 1
    windowStart: str | None = None

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
            name=upload_job(spec.provider_id),
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
    lookups: int = 1,
    window_start: datetime | None = None,
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
                    lookups=lookups,
                    windowStart=_time(window_start) if window_start is not None else None,
                )
            },
        ),
        job=Job(namespace=namespace, name=lookup_job(provider_id)),
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
