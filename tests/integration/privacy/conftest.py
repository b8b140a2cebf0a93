"""Fixtures of the privacy engine's integration tests: a real DP agent with OPRF keys served
over loopback HTTP, and a connector runtime that reaches it over the network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from connector_support import Api, connector_api, connector_runtime
from pavilion.config.settings import Settings
from pavilion.runtime import Runtime
from pavilion.synth.roster import StudentRecord
from privacy_support import RunningAgent, running_psi_agent, use_fixture_issuer


@pytest.fixture
def psi_agent(roster: list[StudentRecord], tmp_path: Path) -> Iterator[RunningAgent]:
    with running_psi_agent(roster, tmp_path / "dp-keys") as agent:
        yield agent


@pytest.fixture
async def net_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A connector runtime whose DP clients use the real network (loopback)."""
    async with connector_runtime(settings) as rt:
        use_fixture_issuer(rt)
        yield rt


@pytest.fixture
async def net_api(net_runtime: Runtime) -> AsyncIterator[Api]:
    """The connector's API in process over ``net_runtime``, with a token per role."""
    async with connector_api(net_runtime) as harness:
        yield harness
