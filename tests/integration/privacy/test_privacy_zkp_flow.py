"""Zero-knowledge predicates and AnonCreds issuance through the connector's API.

The broker-mediated flow (one-time credential, predicate presentation, nothing kept) and the
wallet flow (offer, request, credential, revocation with published deltas, registries that
roll over when full), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from typing import Any

import httpx
import structlog
from sqlalchemy import select

from connector_support import Api
from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.models import AnoncredsCredential
from pavilion.privacy.receipts import verify_bundle
from pavilion.privacy.zkp import dateint
from pavilion.synth.roster import StudentRecord
from privacy_support import problem_field, use_fixture_issuer

REFERENCE = date(2026, 1, 1)


def age(record: StudentRecord) -> int:
    today = date.today()
    b = record.birth_date
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


async def present(
    api: Api, provider_id: str, claim: dict[str, Any], record: StudentRecord, **extra: Any
) -> httpx.Response:
    body = {
        "provider_id": provider_id,
        "claim": claim,
        "subject": {"identifiers": {"student_id": record.student_id}, "residency": "EU"},
        "purpose": "age-restricted purchase",
    } | extra
    return await api.client.post(
        "/v1/privacy/zkp/presentations", json=body, headers=api.auth("broker")
    )


async def verify(api: Api, answer: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/privacy/zkp/verify",
        json={
            "presentation": answer["presentation"],
            "presentation_request": answer["presentation_request"],
        },
        headers=api.auth("broker"),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def contains(text: str, secret: str) -> bool:
    """``secret`` in ``text``; a secret of digits only (the birth date as a number) counts
    only as a number of its own: the proof's integers run to thousands of digits, and any
    eight digits turn up inside them now and then (seen once in a full run)."""
    if secret.isdigit():
        return re.search(rf"(?<![0-9]){secret}(?![0-9])", text) is not None
    return secret in text


def secrets_of(record: StudentRecord) -> list[str]:
    return [
        str(dateint(record.birth_date)),
        record.birth_date.isoformat(),
        record.student_id,
        record.email,
        record.given_name,
        record.family_name,
    ]


async def test_age_over_is_proved_without_the_birth_date(
    api: Api, roster: list[StudentRecord]
) -> None:
    use_fixture_issuer(api.rt)
    provider = await api.register_provider()
    adult = next(r for r in roster if age(r) >= 21)
    with structlog.testing.capture_logs() as events:
        answer = await present(api, provider["id"], {"type": "age_over", "threshold": 21}, adult)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decision"], body["outcome"]) == (True, "true")
    text = json.dumps(body["presentation"])
    leaves = await api.rt.audit.leaves(api.tenant_id, start=0, limit=100)
    for secret in secrets_of(adult):
        assert not contains(text, secret)
        assert not contains(json.dumps(events, default=str), secret)
        assert not contains(json.dumps(leaves), secret)
    checked = await verify(api, body)
    assert checked["verified"] is True
    assert checked["revealed"] == {}

    # The one-time credential is not stored: only its registry slot and keyed pseudonym.
    async with api.rt.db.transaction(api.tenant_id) as session:
        rows = (await session.execute(select(AnoncredsCredential))).scalars().all()
    assert len(rows) == 1
    assert rows[0].purpose == "one-time"
    stored = json.dumps([r.details for r in rows]) + rows[0].subject_ref
    for secret in secrets_of(adult):
        assert not contains(stored, secret)

    bundle = await api.client.get(
        f"/v1/privacy/receipts/{body['receipt_id']}", headers=api.auth("auditor")
    )
    receipt = verify_bundle(
        bundle.json(),
        jwks=api.rt.privacy.receipts.jwks(),
        verifier_key=api.rt.audit.verifier_key_for(api.tenant_id),
    )
    assert receipt.payload["kind"] == "zkp.presentation"
    for secret in secrets_of(adult):
        assert not contains(json.dumps(receipt.payload), secret)


async def test_a_false_predicate_yields_no_presentation(
    api: Api, roster: list[StudentRecord]
) -> None:
    use_fixture_issuer(api.rt)
    provider = await api.register_provider()
    young = next(r for r in roster if age(r) < 65)
    answer = await present(api, provider["id"], {"type": "age_over", "threshold": 65}, young)
    assert answer.status_code == 200
    assert (answer.json()["decision"], answer.json()["outcome"]) == (False, "false")
    assert answer.json()["presentation"] is None
    unknown = dataclasses.replace(young, student_id="S0000000")
    nobody = await present(api, provider["id"], {"type": "student_status"}, unknown)
    assert (nobody.json()["decision"], nobody.json()["outcome"]) == (None, "unknown")


async def test_membership_and_date_range_reveal_only_what_the_claim_allows(
    api: Api, roster: list[StudentRecord]
) -> None:
    use_fixture_issuer(api.rt)
    provider = await api.register_provider()
    member = next(r for r in roster if r.memberships)
    club = member.memberships[0]
    answer = await present(api, provider["id"], {"type": "membership", "group": club}, member)
    body = answer.json()
    assert body["decision"] is True
    checked = await verify(api, body)
    assert checked["verified"] is True
    assert list(checked["revealed"].values()) == [" ".join(club.split()).casefold()]
    born = member.birth_date
    within = {
        "type": "birth_date_between",
        "start": date(born.year - 1, 1, 1).isoformat(),
        "end": date(born.year + 1, 12, 31).isoformat(),
    }
    ranged = (await present(api, provider["id"], within, member)).json()
    assert ranged["decision"] is True
    assert (await verify(api, ranged))["verified"] is True
    assert str(dateint(born)) not in json.dumps(ranged["presentation"])


async def test_relying_party_requests_pass_circuit_validation_first(
    api: Api, roster: list[StudentRecord]
) -> None:
    use_fixture_issuer(api.rt)
    provider = await api.register_provider()
    adult = next(r for r in roster if age(r) >= 18)
    proposed = (
        await present(api, provider["id"], {"type": "age_over", "threshold": 18}, adult)
    ).json()["presentation_request"]
    leaky = json.loads(json.dumps(proposed))
    leaky["requested_attributes"] = {
        "dob": {
            "name": "birthdate_dateint",
            "restrictions": proposed["requested_predicates"]["pred0"]["restrictions"],
        }
    }
    refused = await present(
        api, provider["id"], {"type": "age_over", "threshold": 18}, adult, proof_request=leaky
    )
    assert refused.status_code == 422
    assert problem_field(refused) == "proof_request.requested_attributes.dob.name"
    own = await present(
        api, provider["id"], {"type": "age_over", "threshold": 18}, adult, proof_request=proposed
    )
    assert own.status_code == 200
    assert own.json()["presentation_request"]["nonce"] == proposed["nonce"]
    odd = await present(api, provider["id"], {"type": "age_over", "threshold": 17}, adult)
    assert problem_field(odd) == "claim.threshold"


async def test_wallet_credentials_revoke_and_registries_roll_over(
    api: Api, roster: list[StudentRecord], tmp_path: Any
) -> None:
    use_fixture_issuer(api.rt, capacity=2)
    provider = await api.register_provider()
    issued: list[tuple[dict[str, Any], engine.Holder]] = []
    for record in roster[:5]:
        offer = await api.client.post(
            "/v1/anoncreds/offers", json={"provider_id": provider["id"]}, headers=api.auth("broker")
        )
        assert offer.status_code == 201, offer.text
        holder = engine.Holder.ephemeral()
        offer_json = json.dumps(offer.json()["offer"])
        cred_def_json = json.dumps(offer.json()["credential_definition"])
        request_json, metadata = engine.create_request(holder, cred_def_json, offer_json)
        response = await api.client.post(
            "/v1/anoncreds/credentials",
            json={
                "offer_id": offer.json()["offer_id"],
                "credential_request": json.loads(request_json),
                "subject": {"identifiers": {"student_id": record.student_id}, "residency": "EU"},
                "purpose": "wallet",
            },
            headers=api.auth("broker"),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        registries = await api.client.get(
            f"/v1/anoncreds/providers/{provider['id']}/registries", headers=api.auth("broker")
        )
        definition = next(
            r["definition"]
            for r in registries.json()["items"]
            if r["rev_reg_def_id"] == body["rev_reg_def_id"]
        )
        body["processed"] = engine.process_credential(
            holder, json.dumps(body["credential"]), metadata, cred_def_json, json.dumps(definition)
        )
        body["definition"] = definition
        issued.append((body, holder))
        reused = await api.client.post(
            "/v1/anoncreds/credentials",
            json={
                "offer_id": offer.json()["offer_id"],
                "credential_request": json.loads(request_json),
                "subject": {"identifiers": {"student_id": record.student_id}, "residency": "EU"},
                "purpose": "wallet",
            },
            headers=api.auth("broker"),
        )
        assert reused.status_code == 409  # an offer answers one request
    registries = (
        await api.client.get(
            f"/v1/anoncreds/providers/{provider['id']}/registries", headers=api.auth("broker")
        )
    ).json()["items"]
    assert [(r["seq"], r["status"], r["issued"]) for r in registries] == [
        (1, "full", 2),
        (2, "full", 2),
        (3, "active", 1),
    ]
    assert [b["rev_reg_index"] for b, _ in issued] == [1, 2, 1, 2, 1]

    victim, holder = issued[2]
    revoked = await api.client.post(
        "/v1/anoncreds/revocations",
        json={"credential_ids": [victim["credential_id"]]},
        headers=api.auth("compliance"),
    )
    assert revoked.status_code == 200, revoked.text
    delta = revoked.json()["deltas"][0]
    assert delta["revoked_indices"] == [1]
    again = await api.client.post(
        "/v1/anoncreds/revocations",
        json={"credential_ids": [victim["credential_id"]]},
        headers=api.auth("compliance"),
    )
    assert again.status_code == 409
    deltas = await api.client.get(
        f"/v1/anoncreds/registries/{delta['registry_id']}/deltas", headers=api.auth("broker")
    )
    items = deltas.json()["items"]
    assert [i["revoked"] for i in items] == [[], [1]]
    latest = items[-1]

    # The holder proves with the newest published state: the revoked credential fails,
    # a credential in another registry still passes.
    tails = await api.client.get(
        f"/v1/anoncreds/tails/{victim['tails_hash']}", headers=api.auth("broker")
    )
    tails_path = tmp_path / victim["tails_hash"]
    tails_path.write_bytes(tails.content)
    status_json = json.dumps(latest["status_list"])
    state = engine.revocation_state(
        json.dumps(victim["definition"]), status_json, victim["rev_reg_index"], tails_path
    )
    cred_def = await api.client.get(
        f"/v1/anoncreds/providers/{provider['id']}/credential-definition",
        headers=api.auth("broker"),
    )
    material = cred_def.json()
    request = {
        "name": "student",
        "version": "1.0",
        "nonce": engine.generate_nonce(),
        "requested_attributes": {},
        "requested_predicates": {
            "p": {
                "name": "student_current",
                "p_type": ">=",
                "p_value": 0,
                "restrictions": [{"cred_def_id": material["cred_def_id"]}],
            }
        },
        "non_revoked": {"from": latest["timestamp"], "to": latest["timestamp"] + 10},
    }
    presentation = engine.create_presentation(
        request,
        holder,
        victim["processed"],
        timestamp=latest["timestamp"],
        revocation_state_json=state,
        schemas={material["schema_id"]: json.dumps(material["schema"])},
        cred_defs={material["cred_def_id"]: json.dumps(material["credential_definition"])},
    )
    checked = await verify(
        api, {"presentation": json.loads(presentation), "presentation_request": request}
    )
    assert checked["verified"] is False

    missing = await api.client.post(
        "/v1/anoncreds/revocations",
        json={"credential_ids": ["nope"]},
        headers=api.auth("compliance"),
    )
    assert missing.status_code == 404
    as_broker = await api.client.post(
        "/v1/anoncreds/revocations",
        json={"credential_ids": [issued[0][0]["credential_id"]]},
        headers=api.auth("broker"),
    )
    assert as_broker.status_code == 403
