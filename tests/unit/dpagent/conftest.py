"""Fixtures for the DP agent's unit tests: a small seeded roster and an app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date

import httpx
import pytest
from dpagent_support import AS_OF, DP_KEY
from fastapi import FastAPI
from pydantic import SecretStr

from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig, FaultConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.synth.roster import StudentRecord, generate_roster


@pytest.fixture
def dp_records() -> list[StudentRecord]:
    return generate_roster(50, seed=3, reference_date=date(2026, 1, 1))


@pytest.fixture
def dp_index(dp_records: list[StudentRecord]) -> RecordIndex:
    return RecordIndex(dp_records, as_of=AS_OF)


@pytest.fixture
def make_app(dp_index: RecordIndex) -> Callable[..., FastAPI]:
    """An agent app with the test key; keyword arguments become fault settings."""

    def make(*, insecure: bool = False, **faults: float | int) -> FastAPI:
        config = AgentConfig(
            api_key=None if insecure else SecretStr(DP_KEY),
            insecure_no_auth=insecure,
            faults=FaultConfig(**faults),
        )
        return create_agent_app(config, dp_index)

    return make


@pytest.fixture
async def client(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fault-free agent, authenticated with the bearer key."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app()),
        base_url="http://agent.test",
        headers={"Authorization": f"Bearer {DP_KEY}"},
    ) as http:
        yield http
