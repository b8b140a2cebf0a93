"""The connector's OPRF client over real loopback HTTP: past an endpoint that refuses
connections and one that never answers, it reaches a real DP agent, whose proof verifies;
when no endpoint answers, the broker learns why."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector_support import AGENT_KEY
from pavilion.errors import ProviderUnavailable
from pavilion.privacy import oprf
from pavilion.privacy.psi_client import OprfEvaluator
from pavilion.synth.roster import StudentRecord
from privacy_support import running_psi_agent


@dataclass(frozen=True)
class Provider:
    id: str = "p1"
    name: str = "Loopback DP"
    api_key: str | None = AGENT_KEY


@dataclass(frozen=True)
class Endpoint:
    url: str
    region: str


def refused_url() -> str:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@asynccontextmanager
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_fails_over_to_the_agent_and_its_proof_verifies(
    roster: list[StudentRecord], tmp_path: Path
) -> None:
    with running_psi_agent(roster, tmp_path / "keys") as agent:
        key = agent.ring.current()
        client = oprf.VOPRFClient(key.public_key)
        blinded = client.blind(b"subject")
        evaluator = OprfEvaluator(timeout_seconds=0.5)
        try:
            async with silent_url() as silent:
                endpoints = [
                    Endpoint(refused_url(), "eu-north"),
                    Endpoint(silent, "eu-central"),
                    Endpoint(agent.url, "eu-west"),
                ]
                answer = await evaluator.evaluate(
                    Provider(), endpoints, "tenant-1", key.key_id, [blinded.blinded_element]
                )
                again = await evaluator.evaluate(  # the kept-alive connection is reused
                    Provider(), endpoints[2:], "tenant-1", key.key_id, [blinded.blinded_element]
                )
        finally:
            await evaluator.aclose()
    assert (answer.region, answer.attempts) == ("eu-west", 3)
    assert again.attempts == 1
    output = client.finalize(
        b"subject",
        blinded.blind,
        answer.evaluated_elements[0],
        blinded.blinded_element,
        proof=answer.proof,
    )
    assert output == oprf.VOPRFServer(key.secret).evaluate(b"subject")


async def test_no_endpoint_answering_names_the_last_failure() -> None:
    evaluator = OprfEvaluator(timeout_seconds=0.3)
    element = oprf.VOPRFClient(oprf.generate_key_pair().pk).blind(b"x").blinded_element
    try:
        async with silent_url() as silent:
            with pytest.raises(ProviderUnavailable, match="timed out after 2 attempts"):
                await evaluator.evaluate(
                    Provider(),
                    [Endpoint(refused_url(), "eu-north"), Endpoint(silent, "eu-central")],
                    "tenant-1",
                    "k",
                    [element],
                )
    finally:
        await evaluator.aclose()
