"""openlineage (about 0.4 s and a second HTTP stack) is imported when the first lineage event
is built, never when the server starts."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from ingest_support import NOW
from pavilion.ingest.lineage.emitter import LineageEmitter

_START = """
import pathlib, sys
from pavilion.api.app import create_app
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime

app = create_app(build_runtime(load_settings(None, data_dir=pathlib.Path(sys.argv[1]))))
print(sorted(m for m in sys.modules if m.split(".")[0] == "openlineage"))
"""


def test_the_server_starts_without_importing_openlineage(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _START, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_emitter_builds_its_client_on_the_first_event(tmp_path: Path) -> None:
    file = tmp_path / "lineage" / "events.jsonl"
    emitter = LineageEmitter(file)
    assert not file.parent.exists()  # nothing is set up before an event is built
    event = emitter.emit_lookup(
        tenant_id="t1",
        provider_id="p1",
        claim_type="age_over",
        at=NOW,
        found=True,
        schema_valid=True,
        status="succeeded",
        decision="true",
        credential_issued=False,
        run_id=str(uuid.uuid4()),
    )
    assert event["job"]["name"] == "verify.lookup.p1"
    assert file.read_text().count("verify.lookup.p1") == 1
