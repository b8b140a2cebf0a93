"""Revocation through the API: issued JWT VCs carry a status entry that the served, signed
Status List Token confirms; revoke, suspend and reinstate round-trip (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.jwk import KeySet

from connector_support import Api
from keys_support import spec_token_status, unverified, verify_with_pyjwt
from pavilion.synth.roster import StudentRecord, pick_examples


async def issue(api: Api, provider_id: str, student: StudentRecord) -> dict[str, Any]:
    response = await api.verify(
        provider_id, {"type": "student_status"}, {"student_id": student.student_id}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def served_list(api: Api, uri: str, **headers: str) -> Any:
    return await api.client.get(urlsplit(uri).path, headers=headers)


async def list_value(api: Api, uri: str, idx: int) -> int:
    response = await served_list(api, uri)
    assert response.status_code == 200, response.text
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    claims = verify_with_pyjwt(response.text, jwks)
    return spec_token_status(claims["status_list"], idx)


async def change(api: Api, credential_id: str, action: str, role: str = "tenant-admin") -> Any:
    return await api.client.post(
        f"/v1/credentials/{credential_id}/status",
        json={"action": action, "reason": "subject left the university on request"},
        headers=api.auth(role),
    )


async def test_issued_credential_status_is_published_signed_and_revocable(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    body = await issue(api, provider["id"], pick_examples(roster).current)
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    credential = verify_with_pyjwt(body["credential"], jwks)
    reference = credential["status"]["status_list"]
    uri, idx = reference["uri"], reference["idx"]
    assert uri.startswith(api.rt.settings.public_url + "/status/v1/token/")
    assert isinstance(idx, int)
    assert 0 <= idx < api.rt.settings.status_list_size

    response = await served_list(api, uri)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/statuslist+jwt"
    assert response.headers["cache-control"] == "public, max-age=300"
    etag = response.headers["etag"]
    header, _ = unverified(response.text)
    assert header["typ"] == "statuslist+jwt"
    assert header["kid"] == jwks["keys"][0]["kid"]
    # PyJWT and joserfc both verify it; the claims are the draft's.
    claims = verify_with_pyjwt(response.text, jwks, require=["exp", "iat", "sub"])
    joserfc = jws.deserialize_compact(response.text, KeySet.import_key_set(jwks))
    assert json.loads(joserfc.payload) == claims
    assert claims["sub"] == uri
    assert claims["ttl"] == 300
    assert claims["exp"] - claims["iat"] == api.rt.settings.status_list_lifetime_seconds
    assert claims["status_list"]["bits"] == 2
    assert spec_token_status(claims["status_list"], idx) == 0
    assert (await served_list(api, uri, **{"if-none-match": etag})).status_code == 304
    again = await served_list(api, uri)
    assert again.text == response.text  # cached: every request gets the same signed bytes

    # Only roles with credentials:status may change it.
    credential_id = credential["jti"].removeprefix("urn:uuid:")
    assert (await change(api, credential_id, "revoke", role="broker")).status_code == 403
    revoked = await change(api, credential_id, "revoke")
    assert revoked.status_code == 200, revoked.text
    result = revoked.json()
    assert (result["previous"], result["state"], result["changed"]) == ("valid", "revoked", True)

    after = await served_list(api, uri, **{"if-none-match": etag})
    assert after.status_code == 200  # the list changed: a new ETag
    assert after.headers["etag"] != etag
    assert await list_value(api, uri, idx) == 1
    assert await api.rt.status_lists.resolve_status(uri, idx) == 1

    status = await api.client.get(
        f"/v1/credentials/{credential_id}/status", headers=api.auth("broker")
    )
    assert status.json()["state"] == "revoked"
    assert status.json()["lists"] == [
        {"uri": uri, "kind": "token", "purpose": "status", "idx": idx, "value": 1}
    ]

    # The change is audited in the tenant's log: ids and a hash of the reason, no free text.
    leaf = await api.rt.audit.leaf(api.tenant_id, result["audit_index"])
    event = leaf["event"]
    assert event["kind"] == "credential-status"
    assert (event["credential_id"], event["from"], event["to"]) == (
        credential_id,
        "valid",
        "revoked",
    )
    assert "left the university" not in json.dumps(event)
    assert len(event["reason_sha256"]) == 64

    # Revoking again changes nothing and writes no leaf.
    twice = (await change(api, credential_id, "revoke")).json()
    assert (twice["changed"], twice["audit_index"]) == (False, None)


async def test_suspend_reinstate_and_revoke_round_trip(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    student = pick_examples(roster).current
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    first = verify_with_pyjwt((await issue(api, provider["id"], student))["credential"], jwks)
    second = verify_with_pyjwt((await issue(api, provider["id"], student))["credential"], jwks)
    one, two = (c["jti"].removeprefix("urn:uuid:") for c in (first, second))
    uri = first["status"]["status_list"]["uri"]
    assert second["status"]["status_list"]["uri"] == uri  # same open list
    idx1, idx2 = first["status"]["status_list"]["idx"], second["status"]["status_list"]["idx"]
    assert idx1 != idx2

    assert (await change(api, one, "suspend", role="compliance")).json()["state"] == "suspended"
    assert await list_value(api, uri, idx1) == 2
    assert await list_value(api, uri, idx2) == 0
    assert (await change(api, one, "reinstate")).json()["state"] == "valid"
    assert await list_value(api, uri, idx1) == 0
    await change(api, one, "suspend")
    assert (await change(api, one, "revoke")).json()["previous"] == "suspended"
    assert await list_value(api, uri, idx1) == 1

    refused = await change(api, one, "reinstate")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "stays revoked" in refused.json()["detail"]
    assert await list_value(api, uri, idx2) == 0  # the other credential never moved

    unknown = await change(api, "0f8fad5b-d9cb-469f-a165-70867728950e", "revoke")
    assert unknown.status_code == 404
    bad = await api.client.post(
        f"/v1/credentials/{two}/status", json={"action": "delete"}, headers=api.auth("tenant-admin")
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "action"


async def test_public_list_urls_reveal_nothing_for_unknown_ids(api: Api) -> None:
    for path in (
        "/status/v1/token/not-a-list",
        "/status/v1/token/" + "0" * 64,
        "/status/v1/bitstring/" + "a" * 64,
    ):
        response = await api.client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_another_tenant_cannot_change_or_read_a_credential_status(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    body = await issue(api, provider["id"], pick_examples(roster).current)
    claims = verify_with_pyjwt(
        body["credential"], (await api.client.get("/.well-known/jwks.json")).json()
    )
    credential_id = claims["jti"].removeprefix("urn:uuid:")
    other = await api.rt.tenancy.create_tenant("tenant-b")
    from pavilion.tenancy.roles import Role

    token = await api.rt.tenancy.create_token(other.id, "admin", Role.TENANT_ADMIN)
    headers = {"authorization": f"Bearer {token.secret}"}
    response = await api.client.post(
        f"/v1/credentials/{credential_id}/status", json={"action": "revoke"}, headers=headers
    )
    assert response.status_code == 404
    read = await api.client.get(f"/v1/credentials/{credential_id}/status", headers=headers)
    assert read.status_code == 404
