"""Fixtures for the connection integration tests: TLS material, rosters, a connector harness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest

from connect_harness import connect_settings, connector_api
from connect_support import TlsMaterial
from connector_support import Api
from pavilion.config.settings import Settings
from pavilion.synth.roster import StudentRecord, generate_roster, write_roster

REFERENCE_DATE = date(2026, 1, 1)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return TlsMaterial(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def students() -> list[StudentRecord]:
    return generate_roster(40, seed=11, reference_date=REFERENCE_DATE)


@pytest.fixture(scope="module")
def roster_file(tmp_path_factory: pytest.TempPathFactory, students: list[StudentRecord]) -> Path:
    path = tmp_path_factory.mktemp("roster") / "roster.csv"
    write_roster(students, path, "csv")
    return path


@pytest.fixture
def sqlite_connect_settings(tmp_path: Path) -> Settings:
    return connect_settings(tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def any_connect_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        app_url, owner_url = request.getfixturevalue("postgres_urls")
        return connect_settings(tmp_path, database_url=app_url, database_migration_url=owner_url)
    return connect_settings(tmp_path)


@pytest.fixture
async def capi(sqlite_connect_settings: Settings) -> AsyncIterator[Api]:
    async with connector_api(sqlite_connect_settings) as harness:
        yield harness


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "procs"
    path.mkdir()
    return path
