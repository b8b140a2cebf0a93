"""The verification flow through the HTTP API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import jwt
import pytest
from sqlalchemy import func, select, update

from connector_support import Api
from pavilion.audit.checkpoint import verify_checkpoint
from pavilion.audit.merkle import verify_consistency, verify_inclusion
from pavilion.store.idempotency import IdempotencyRecord, RecentAnswers
from pavilion.synth.roster import StudentRecord, pick_examples
from pavilion.verification.models import Verification


async def test_current_student_gets_a_credential_that_pyjwt_verifies(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    current = pick_examples(roster).current
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": current.student_id}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["decision"], body["outcome"]) == (True, "true")  # a JSON boolean
    assert body["status"] == "succeeded"
    assert body["region"] == "eu-west"
    assert body["audit"]["index"] == 1  # leaf 0 records the provider's registration

    # Verify with PyJWT against the served JWKS: nothing from pavilion does the checking.
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["credential"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        body["credential"], jwt.PyJWK(key).key, algorithms=["ES256"], options={"require": ["exp"]}
    )
    assert claims["vc"]["credentialSubject"] == {"studentStatus": {"current": True}}
    assert claims["vc"]["type"] == ["VerifiableCredential", "StudentStatusCredential"]
    # Minimum disclosure: nothing of the record travels in the credential.
    text = json.dumps(claims)
    for value in (current.student_id, current.email, current.given_name, current.family_name):
        assert value not in text
    assert current.birth_date.isoformat() not in text


async def test_former_and_unknown_subjects_get_no_credential(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    examples = pick_examples(roster)
    former = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": examples.former.student_id}
    )
    unknown = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": examples.unknown_student_id}
    )
    answers = [
        (a.json()["decision"], a.json()["outcome"], a.json()["credential"])
        for a in (former, unknown)
    ]
    # false is the DP vouching that the claim does not hold; null is the DP not knowing who
    assert answers == [(False, "false", None), (None, "unknown", None)]


async def test_age_over_by_email_and_routing_by_claim_type(
    api: Api, roster: list[StudentRecord]
) -> None:
    await api.register_provider()
    current = pick_examples(roster).current
    body = {
        "claim": {"type": "age_over", "threshold": 18},
        "subject": {"identifiers": {"email": current.email.upper()}, "residency": "EU"},
        "purpose": "age check",
    }
    response = await api.client.post("/v1/verifications", json=body, headers=api.auth("broker"))
    assert response.status_code == 201, response.text
    claims = jwt.decode(response.json()["credential"], options={"verify_signature": False})
    assert claims["vc"]["credentialSubject"] == {"ageOver": {"threshold": 18, "over": True}}


async def test_membership_claim(api: Api, roster: list[StudentRecord]) -> None:
    provider = await api.register_provider()
    member = next(r for r in roster if r.memberships)
    yes = await api.verify(
        provider["id"],
        {"type": "membership", "group": member.memberships[0].upper()},
        {"student_id": member.student_id},
    )
    no = await api.verify(
        provider["id"],
        {"type": "membership", "group": "No Such Club"},
        {"student_id": member.student_id},
    )
    assert yes.json()["decision"] is True
    assert no.json()["decision"] is False


async def test_verification_can_be_read_back(api: Api, roster: list[StudentRecord]) -> None:
    provider = await api.register_provider()
    created = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": roster[0].student_id}
    )
    read = await api.client.get(
        f"/v1/verifications/{created.json()['id']}", headers=api.auth("compliance")
    )
    assert read.status_code == 200
    assert read.json()["decision"] is created.json()["decision"] is True
    assert read.json()["outcome"] == created.json()["outcome"] == "true"
    missing = await api.client.get("/v1/verifications/nope", headers=api.auth("compliance"))
    assert missing.status_code == 404


async def test_audit_checkpoint_and_proofs_verify(api: Api, roster: list[StudentRecord]) -> None:
    provider = await api.register_provider()
    for record in roster[:5]:
        await api.verify(
            provider["id"], {"type": "student_status"}, {"student_id": record.student_id}
        )
    first = (await api.client.get("/v1/audit/checkpoint", headers=api.auth("auditor"))).json()
    first_cp = verify_checkpoint(first["note"], first["verifier_key"], origin=first["origin"])
    assert first_cp.size == 6  # the provider's registration, then five verifications
    for record in roster[5:8]:
        await api.verify(
            provider["id"], {"type": "student_status"}, {"student_id": record.student_id}
        )
    second = (await api.client.get("/v1/audit/checkpoint", headers=api.auth("auditor"))).json()
    second_cp = verify_checkpoint(second["note"], second["verifier_key"])
    assert second_cp.size == 9

    inclusion = (
        await api.client.get(
            "/v1/audit/proofs/inclusion",
            params={"index": 3, "tree_size": 9},
            headers=api.auth("auditor"),
        )
    ).json()
    verify_inclusion(
        bytes.fromhex(inclusion["leaf_hash"]),
        3,
        9,
        [bytes.fromhex(h) for h in inclusion["proof"]],
        second_cp.root_hash,
    )
    consistency = (
        await api.client.get(
            "/v1/audit/proofs/consistency",
            params={"first": 6, "second": 9},
            headers=api.auth("auditor"),
        )
    ).json()
    verify_consistency(
        6,
        9,
        first_cp.root_hash,
        second_cp.root_hash,
        [bytes.fromhex(h) for h in consistency["proof"]],
    )
    note = await api.client.get("/v1/audit/checkpoint/note", headers=api.auth("auditor"))
    assert note.text == second["note"]
    leaves = (
        await api.client.get("/v1/audit/leaves", params={"limit": 3}, headers=api.auth("auditor"))
    ).json()
    assert [leaf["index"] for leaf in leaves["items"]] == [0, 1, 2]
    assert leaves["next"] == 3
    report = await api.rt.audit.verify(api.tenant_id)
    assert report.ok, report.problems
    assert (report.size, report.checkpoints_checked) == (9, 2)


async def test_bad_proof_ranges_are_422(api: Api) -> None:
    for path, params in (
        ("/v1/audit/proofs/inclusion", {"index": 0}),
        ("/v1/audit/proofs/consistency", {"first": 2, "second": 1}),
    ):
        response = await api.client.get(path, params=params, headers=api.auth("auditor"))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_idempotency_key_replays_and_refuses_other_bodies(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    subject = {"student_id": roster[0].student_id}
    key = {"idempotency-key": "order-42"}
    first = await api.verify(provider["id"], {"type": "student_status"}, subject, headers=key)
    again = await api.verify(provider["id"], {"type": "student_status"}, subject, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    other = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 21}, subject, headers=key
    )
    assert other.status_code == 409
    async with api.rt.db.transaction(api.tenant_id) as session:
        count = (await session.execute(select(func.count(Verification.id)))).scalar_one()
    assert count == 1


async def test_an_answer_stored_before_0_2_is_replayed_with_a_boolean_decision(
    api: Api, roster: list[StudentRecord]
) -> None:
    """Before 0.2.0 ``decision`` was the string outcome; a replay answers in today's shape."""
    provider = await api.register_provider()
    subject = {"student_id": pick_examples(roster).former.student_id}
    key = {"idempotency-key": "stored-by-0.1"}
    first = await api.verify(provider["id"], {"type": "student_status"}, subject, headers=key)
    assert (first.json()["decision"], first.json()["outcome"]) == (False, "false")
    legacy = {k: v for k, v in first.json().items() if k != "outcome"} | {"decision": "false"}
    async with api.rt.db.transaction(api.tenant_id) as session:
        await session.execute(update(IdempotencyRecord).values(response=legacy))
    api.rt.idempotency = RecentAnswers()  # as after a restart: only the stored record is left
    again = await api.verify(provider["id"], {"type": "student_status"}, subject, headers=key)
    assert again.headers["idempotency-replayed"] == "true"
    assert again.json() == first.json()


async def test_concurrent_requests_with_one_key_make_one_verification(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    subject = {"student_id": roster[1].student_id}
    key = {"idempotency-key": "burst"}
    responses = await asyncio.gather(
        *[
            api.verify(provider["id"], {"type": "student_status"}, subject, headers=key)
            for _ in range(5)
        ]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1


@pytest.mark.parametrize("residency", ["US", "UK"])
async def test_residency_forbids_other_jurisdictions_and_is_audited(
    api: Api, roster: list[StudentRecord], residency: str
) -> None:
    provider = await api.register_provider()
    response = await api.verify(
        provider["id"],
        {"type": "student_status"},
        {"student_id": roster[0].student_id},
        residency=residency,
    )
    assert response.status_code == 403
    problem = response.json()
    assert problem["reason"] == "residency"
    leaf = await api.rt.audit.leaf(api.tenant_id, problem["audit_index"])
    assert leaf["event"]["status"] == "policy_denied"


async def test_concurrent_first_appends_of_a_tenant_get_distinct_indices(api: Api) -> None:
    # FOR UPDATE locks nothing before the head row exists: the first appends must not race.
    async def append(n: int) -> int:
        async with api.rt.db.transaction(api.tenant_id) as session:
            receipt = await api.rt.audit.append(session, api.tenant_id, {"kind": "t", "n": n})
        return receipt.index

    indices = await asyncio.gather(*[append(n) for n in range(8)])
    assert sorted(indices) == list(range(8))
    report = await api.rt.audit.verify(api.tenant_id)
    assert report.ok
    assert report.size == 8
