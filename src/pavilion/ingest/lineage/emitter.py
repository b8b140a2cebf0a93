"""The lineage emitter: one OpenLineage client per runtime (``Runtime.lineage``), built when
the first event is, so that nothing imports openlineage at start-up.

Events go to an in-process transport (the caller stores what ``emit`` returns in its own
transaction) and, when a lineage file is configured, also to the library's file transport.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pavilion.ingest.lineage.model import LOOKUP_TEMPLATES, BatchLineage
from pavilion.store.private_files import private_file

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent
    from openlineage.client.transport.file import FileTransport

    from pavilion.ingest.lineage.events import InProcessTransport


class LineageEmitter:
    """An OpenLineage client over the in-process transport (plus a file, if configured)."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._client: OpenLineageClient | None = None
        self._transport: InProcessTransport | None = None
        self._file: FileTransport | None = None
        self._lookup_templates: dict[tuple[Any, ...], dict[str, Any]] = {}

    def _ready(self) -> tuple[OpenLineageClient, InProcessTransport]:
        """The client and its transport, built (and openlineage imported) on first use."""
        with self._lock:
            if self._client is None or self._transport is None:
                from openlineage.client import OpenLineageClient
                from openlineage.client.transport.file import FileConfig, FileTransport

                from pavilion.ingest.lineage.events import InProcessTransport

                transport = InProcessTransport()
                if self.file is not None:
                    self.file.parent.mkdir(parents=True, exist_ok=True)
                    private_file(self.file)  # 0600 before the transport appends to it
                    self._file = FileTransport(
                        FileConfig(log_file_path=str(self.file), append=True)
                    )
                self._client = OpenLineageClient(
                    transport=transport, config={"facets": {"environment_variables": []}}
                )
                self._transport = transport
            return self._client, self._transport

    def emit(self, event: RunEvent) -> dict[str, Any]:
        """Emit and return the serialised event (what the caller stores)."""
        from openlineage.client.serde import Serde

        client, transport = self._ready()
        client.emit(event)
        if self._file is not None:
            self._file.emit(event)
        taken = transport.take(event.run.runId)
        return taken[-1] if taken else dict(Serde.to_dict(event))

    def emit_batch(self, spec: BatchLineage) -> dict[str, Any]:
        """A roster upload's run event (see ``events.batch_event``), emitted and serialised."""
        from pavilion.ingest.lineage.events import batch_event

        return self.emit(batch_event(spec))

    def emit_lookup(self, **spec: Any) -> dict[str, Any]:
        """A lookup's event (see ``events.lookup_event``), on the verification hot path.

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
        if template is None or self.file is not None:
            from pavilion.ingest.lineage.events import lookup_event

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
        return {**template, "eventTime": spec["at"].isoformat(), "run": run}
