"""The audit API against its standards: C2SP tlog-checkpoint key names, RFC 9162 proof ranges,
and one problem type scheme for the connector and its DP agents (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx

from connector_support import Api
from pavilion.audit.checkpoint import Checkpoint, parse_signed_note, sign_checkpoint
from pavilion.audit.merkle import CompactRange, leaf_hash, verify_consistency
from pavilion.audit.models import AuditCheckpoint

AUDITOR = "auditor"


async def _append(api: Api, count: int) -> None:
    async with api.rt.db.transaction(api.tenant_id) as session:
        for index in range(count):
            await api.rt.audit.append(session, api.tenant_id, {"kind": "test", "n": index})


async def _checkpoint(api: Api) -> dict[str, Any]:
    response = await api.client.get("/v1/audit/checkpoint", headers=api.auth(AUDITOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_checkpoints_are_signed_under_their_origin(api: Api) -> None:
    """C2SP tlog-checkpoint: the key name SHOULD be the origin (one per tenant here)."""
    await _append(api, 3)
    body = await _checkpoint(api)
    origin = f"pavilion.local/audit/{api.tenant_id}"
    assert body["origin"] == origin
    assert body["note"].startswith(f"{origin}\n3\n")
    signatures = parse_signed_note(body["note"]).signatures
    assert [s.key_name for s in signatures] == [origin]
    assert body["verifier_key"].startswith(f"{origin}+")


async def test_checkpoints_signed_under_the_old_key_name_still_verify(api: Api) -> None:
    """Checkpoints stored before the key name became the origin keep verifying; the API
    answers a note under the origin even while the log has not grown since."""
    await _append(api, 2)
    origin = api.rt.audit.origin(api.tenant_id)
    hashes = [leaf_hash(f'{{"kind":"test","n":{i}}}'.encode()) for i in range(2)]
    root = CompactRange.from_leaf_hashes(hashes).root()
    signer = api.rt.keystore.signer("audit-signing")
    legacy = await sign_checkpoint(Checkpoint(origin, 2, root), "pavilion.local", signer)
    async with api.rt.db.transaction(api.tenant_id) as session:
        session.add(
            AuditCheckpoint(tenant_id=api.tenant_id, size=2, root_hash=root.hex(), note=legacy)
        )
    report = await api.rt.audit.verify(api.tenant_id)
    assert report.ok, report.problems
    assert report.checkpoints_checked == 1
    body = await _checkpoint(api)
    assert body["size"] == 2
    assert body["note"] != legacy
    assert [s.key_name for s in parse_signed_note(body["note"]).signatures] == [origin]


async def test_consistency_from_the_empty_tree_is_a_400(api: Api) -> None:
    """RFC 9162 2.1.4.1 defines PROOF(m, D[n]) for 0 < m < n only: first=0 has no answer."""
    await _append(api, 3)
    auditor = api.auth(AUDITOR)
    empty = await api.client.get(
        "/v1/audit/proofs/consistency", params={"first": 0, "second": 3}, headers=auditor
    )
    assert empty.status_code == 400
    assert empty.headers["content-type"] == "application/problem+json"
    problem = empty.json()
    assert problem["type"] == "https://pavilion.example/problems/bad-request"
    assert problem["errors"][0]["field"] == "first"
    same = await api.client.get(
        "/v1/audit/proofs/consistency", params={"first": 3, "second": 3}, headers=auditor
    )
    assert same.status_code == 200
    assert same.json()["proof"] == []
    grown = (
        await api.client.get(
            "/v1/audit/proofs/consistency", params={"first": 1, "second": 3}, headers=auditor
        )
    ).json()
    verify_consistency(
        1,
        3,
        bytes.fromhex(grown["first_root"]),
        bytes.fromhex(grown["second_root"]),
        [bytes.fromhex(h) for h in grown["proof"]],
    )


async def test_connector_and_dp_agent_share_one_problem_type_scheme(
    api: Api, agent_app: Any
) -> None:
    """RFC 9457 3.1.1: a problem type is a URI naming the problem; one error, one URI, from
    whichever process answers."""
    connector = await api.client.get("/v1/audit/checkpoint")
    transport = httpx.ASGITransport(app=agent_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as agent:
        answered = await agent.post("/v1/lookup", json={"identifiers": {"student_id": "S1"}})
    assert connector.status_code == answered.status_code == 401
    assert connector.json()["type"] == answered.json()["type"]
    assert answered.json()["type"] == "https://pavilion.example/problems/unauthenticated"
