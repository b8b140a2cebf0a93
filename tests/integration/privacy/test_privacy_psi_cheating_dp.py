"""A DP that cheats, rate-limits or rotates its key, seen from the connector over loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from test_privacy_psi_flow import psi_verify, setup_psi

from connector_support import Api
from pavilion.dpagent.oprf_keys import OprfKeyRing
from pavilion.dpagent.tag_set_push import PushTarget, push_tag_sets
from pavilion.jose import b64url, b64url_decode
from pavilion.privacy import oprf
from pavilion.privacy import ristretto as r255
from pavilion.serving import BackgroundServer
from pavilion.synth.roster import StudentRecord
from privacy_support import running_psi_agent

Tamper = Callable[[list[bytes], list[bytes], bytes], tuple[list[bytes], bytes]]


def dishonest_agent(ring: OprfKeyRing, tamper: Tamper) -> FastAPI:
    """An agent that holds the real key but alters what it sends back."""
    app = FastAPI()

    @app.post("/v1/oprf/evaluate")
    async def evaluate(request: Request) -> dict[str, Any]:
        body = await request.json()
        blinded = [b64url_decode(e) for e in body["elements"]]
        batch = ring.get(body["key_id"]).server.blind_evaluate_batch(blinded)
        evaluated, proof = tamper(blinded, list(batch.evaluated_elements), batch.proof)
        return {
            "key_id": body["key_id"],
            "evaluated": [b64url(e) for e in evaluated],
            "proof": b64url(proof),
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def other_key(
    blinded: list[bytes], evaluated: list[bytes], proof: bytes
) -> tuple[list[bytes], bytes]:
    """Evaluate under another key, with a proof that is valid for that other key."""
    batch = oprf.VOPRFServer(oprf.generate_key_pair().sk).blind_evaluate_batch(blinded)
    return list(batch.evaluated_elements), batch.proof


def flip_one(
    blinded: list[bytes], evaluated: list[bytes], proof: bytes
) -> tuple[list[bytes], bytes]:
    """The real key's proof, but one evaluation swapped for a random element."""
    return [r255.scalarmult_base(r255.scalar_random()), *evaluated[1:]], proof


async def test_a_dp_answering_with_another_key_is_caught(
    net_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    ring = OprfKeyRing.open(tmp_path / "keys")
    enrolled = next(r for r in roster if r.enrolment_status == "enrolled")
    for n, tamper in enumerate((other_key, flip_one)):
        with BackgroundServer(dishonest_agent(ring, tamper)) as cheat:
            provider_id = await setup_psi(net_api, cheat.url, ring, roster, name=f"Cheat {n}")
            response = await psi_verify(
                net_api, provider_id, {"type": "student_status"}, {"email": enrolled.email}
            )
        assert response.status_code == 502, response.text
        problem = response.json()
        assert problem["type"].endswith("dp-proof-invalid")
        assert problem["verification_id"]  # the failed attempt is recorded and audited


async def test_rate_limit_reaches_the_broker_as_retry_after(
    net_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    enrolled = next(r for r in roster if r.enrolment_status == "enrolled")
    with running_psi_agent(roster, tmp_path / "keys", rate=0.001, burst=3) as agent:
        provider_id = await setup_psi(net_api, agent.url, agent.ring, roster)
        first = await psi_verify(
            net_api, provider_id, {"type": "student_status"}, {"email": enrolled.email}
        )
        second = await psi_verify(
            net_api, provider_id, {"type": "student_status"}, {"email": enrolled.email}
        )
    assert first.status_code == 201
    assert second.status_code == 503
    assert second.json()["type"].endswith("oprf-rate-limited")
    assert int(second.headers["retry-after"]) >= 1


async def test_key_rotation_serves_old_rosters_until_pushed_again(
    net_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    enrolled = next(r for r in roster if r.enrolment_status == "enrolled")
    claim, who = {"type": "student_status"}, {"student_id": enrolled.student_id}
    with running_psi_agent(roster, tmp_path / "keys") as agent:
        provider_id = await setup_psi(net_api, agent.url, agent.ring, roster)
        old_key = agent.ring.current().key_id
        agent.ring.rotate()  # the running agent reloads the key file
        still = await psi_verify(net_api, provider_id, claim, who)
        assert still.json()["decision"] is True  # the previous key still evaluates

        agent.ring.rotate()  # the roster's key is now gone
        gone = await psi_verify(net_api, provider_id, claim, who)
        assert gone.status_code == 502
        assert "push its tag sets again" in gone.json()["detail"]

        target = PushTarget(
            "http://connector.test", net_api.tokens["dp-admin"], net_api.tenant_id, provider_id
        )
        transport = httpx.ASGITransport(app=net_api.app)  # type: ignore[attr-defined]
        await push_tag_sets(roster, agent.ring, target, workers=1, transport=transport)
        again = await psi_verify(net_api, provider_id, claim, who)
        assert again.json()["decision"] is True
        assert agent.ring.current().key_id != old_key
