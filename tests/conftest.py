"""Shared fixtures: a clean environment, settings, databases (SQLite and the machine's
PostgreSQL, each migrated once and cloned per test), runtime, API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr

from connector_support import AGENT_KEY, Api, connector_api, connector_runtime
from databases import DatabaseUnavailable, postgres_database, postgres_template, sqlite_database
from pavilion.config.settings import Settings, load_settings
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.runtime import Runtime
from pavilion.synth.roster import StudentRecord, generate_roster

# pytest-xdist workers inherit a made-up 80x24 terminal (COLUMNS/LINES), which Rich consoles
# created at import would keep for good; without it they follow each test's COLUMNS.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)

# Hypothesis's per-example deadline (200 ms) measures the machine, not the code: on a shared,
# loaded machine it fails pure tests at random. pytest-timeout (120 s a test) catches hangs.
hypothesis_settings.register_profile("pavilion", deadline=None)
hypothesis_settings.load_profile("pavilion")

REFERENCE_DATE = date(2026, 1, 1)
#: Read once at start-up: the fixture below clears PAVILION_* before every test.
SERVICES_REQUIRED = (
    os.environ.get("PAVILION_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
)


def services_required() -> bool:
    return SERVICES_REQUIRED


@pytest.fixture(autouse=True)
def _no_pavilion_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without PAVILION_* variables, whatever the shell or CI exported."""
    for name in [name for name in os.environ if name.startswith("PAVILION_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def postgres_urls() -> Iterator[tuple[str, str]]:
    """A migrated database per test: (app url as the non-owner role, owner url)."""
    try:
        postgres_template()
    except DatabaseUnavailable as exc:
        if services_required():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with postgres_database() as urls:
        yield urls


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Migrated settings on each backend; PostgreSQL runs as the non-owner app role."""
    if request.param == "postgres":
        app_url, owner_url = request.getfixturevalue("postgres_urls")
        return load_settings(
            None, data_dir=tmp_path, database_url=app_url, database_migration_url=owner_url
        )
    sqlite_database(tmp_path)
    return load_settings(None, data_dir=tmp_path)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    sqlite_database(tmp_path)
    return load_settings(None, data_dir=tmp_path)


@pytest.fixture
def roster() -> list[StudentRecord]:
    return generate_roster(60, seed=7, reference_date=REFERENCE_DATE)


@pytest.fixture
def agent_app(roster: list[StudentRecord]) -> Any:
    return create_agent_app(
        AgentConfig(api_key=SecretStr(AGENT_KEY)),
        RecordIndex(roster, as_of=datetime(2026, 1, 1, tzinfo=UTC)),
    )


@pytest.fixture
async def runtime(settings: Settings, agent_app: Any) -> AsyncIterator[Runtime]:
    async with connector_runtime(settings, agent_app) as rt:
        yield rt


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    async with connector_api(runtime) as harness:
        yield harness
