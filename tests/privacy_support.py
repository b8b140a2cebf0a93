"""Helpers for the privacy engine's tests: DP agents with OPRF keys, AnonCreds material.

A credential definition takes seconds to generate (safe primes), so one is made per test
session and handed to every ``AnoncredsService`` through its ``material_factory`` seam; the
tests that exercise creation itself call :func:`engine.create_issuer` directly.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connector_support import AGENT_KEY
from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.service import AnoncredsService
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.oprf_config import OprfConfig
from pavilion.dpagent.oprf_keys import OprfKeyRing
from pavilion.dpagent.records import RecordIndex
from pavilion.runtime import Runtime
from pavilion.serving import BackgroundServer
from pavilion.synth.roster import StudentRecord

FIXTURE_ISSUER = "https://pavilion.test/anoncreds/fixture"
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


_material_lock = threading.Lock()


@functools.cache
def _session_material() -> engine.IssuerMaterial:
    return engine.create_issuer(FIXTURE_ISSUER)


def fixture_material(_issuer_uri: str = FIXTURE_ISSUER) -> engine.IssuerMaterial:
    """One credential definition for the whole session (the issuer URI is ignored)."""
    with _material_lock:
        return _session_material()


def agent_app(
    roster: list[StudentRecord],
    key_dir: Path,
    *,
    rate: float = 1000.0,
    burst: int = 100_000,
    max_batch: int = 10_000,
) -> Any:
    config = AgentConfig(
        api_key=SecretStr(AGENT_KEY),
        oprf=OprfConfig(key_dir=key_dir, rate_per_second=rate, burst=burst, max_batch=max_batch),
    )
    return create_agent_app(config, RecordIndex(roster, as_of=AS_OF))


@dataclass
class RunningAgent:
    url: str
    ring: OprfKeyRing
    key_dir: Path


@contextmanager
def running_psi_agent(
    roster: list[StudentRecord], key_dir: Path, **limits: Any
) -> Iterator[RunningAgent]:
    """A real DP agent with OPRF endpoints, served by uvicorn on a loopback port."""
    ring = OprfKeyRing.open(key_dir)
    with BackgroundServer(agent_app(roster, key_dir, **limits)) as server:
        yield RunningAgent(server.url, ring, key_dir)


def provider_for(agent_url: str, name: str = "PSI University") -> dict[str, Any]:
    return {
        "name": name,
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": agent_url}],
    }


def tree_text(directory: Path) -> str:
    """Every file under ``directory`` as text (binary bytes decoded leniently)."""
    parts = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def problem_field(response: Any) -> str | None:
    """The field a problem+json answer names (top-level, or its first error)."""
    body = response.json()
    if body.get("field"):
        return str(body["field"])
    errors = body.get("errors") or []
    return str(errors[0]["field"]) if errors else None


def use_fixture_issuer(rt: Runtime, capacity: int = 1000) -> None:
    """Reuse the session's credential definition; registries of ``capacity`` slots."""
    current = rt.privacy.anoncreds
    config = type(current.config)(
        tails_dir=current.config.tails_dir,
        issuer_base=current.config.issuer_base,
        registry_capacity=capacity,
    )
    rt.privacy.anoncreds = AnoncredsService(
        rt.db,
        rt.tenant_keys,
        config,
        clock=lambda: rt.clock(),  # noqa: PLW0108  late-bound: tests replace rt.clock
        material_factory=fixture_material,
    )
