"""Key lifecycle through the admin API on the software keystore (SQLite and PostgreSQL):
rotation keeps old credentials verifiable until retirement, and every step is audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from connector_support import Api
from keys_support import unverified, verify_with_pyjwt
from pavilion.synth.roster import StudentRecord, pick_examples
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from waiting import until


async def issue(api: Api, provider_id: str, student: StudentRecord) -> str:
    response = await api.verify(
        provider_id, {"type": "student_status"}, {"student_id": student.student_id}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["credential"]
    return token


async def jwks(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = (await api.client.get("/.well-known/jwks.json")).json()
    return document


async def keys_call(api: Api, method: str, path: str, **body: Any) -> Any:
    return await api.client.request(
        method, "/v1/keys" + path, json=body or None, headers=api.auth("platform-admin")
    )


async def platform_events(api: Api, kind: str) -> list[dict[str, Any]]:
    leaves = await api.rt.audit.leaves(PLATFORM_TENANT_ID, start=0, limit=1000)
    return [leaf["event"] for leaf in leaves if leaf["event"]["kind"] == kind]


async def test_rotation_keeps_old_credentials_verifiable_until_the_key_is_retired(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    student = pick_examples(roster).current
    old_credential = await issue(api, provider["id"], student)
    old_kid = unverified(old_credential)[0]["kid"]

    rotated = await keys_call(api, "POST", "/rotate", purpose="credential-signing")
    assert rotated.status_code == 201, rotated.text
    change = rotated.json()
    new_kid = change["key"]["key_id"]
    assert (change["key"]["state"], change["previous_active"]) == ("active", old_kid)
    assert "d" not in change["key"]["public_jwk"]

    new_credential = await issue(api, provider["id"], student)
    assert unverified(new_credential)[0]["kid"] == new_kid
    published = await jwks(api)
    assert {k["kid"] for k in published["keys"]} >= {old_kid, new_kid}
    assert verify_with_pyjwt(old_credential, published)["vc"]  # still verifies
    assert verify_with_pyjwt(new_credential, published)["vc"]

    # Retiring the active key is refused; retiring the old one takes it out of the JWKS.
    refused = await keys_call(api, "POST", f"/{new_kid}/retire")
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/key-lifecycle")
    retired = await keys_call(api, "POST", f"/{old_kid}/retire")
    assert retired.status_code == 200
    assert retired.json()["key"]["state"] == "retired"
    after = await jwks(api)
    assert old_kid not in {k["kid"] for k in after["keys"]}
    with pytest.raises(StopIteration):  # a verifier finds no key for the old credential
        verify_with_pyjwt(old_credential, after)
    assert verify_with_pyjwt(new_credential, after)["vc"]

    events = await platform_events(api, "key-lifecycle")
    steps = [(e["action"], e["key_id"]) for e in events if e["actor"].startswith("token:")]
    assert steps == [("rotate", new_kid), ("retire", old_kid)]
    assert events[-1]["previous_active"] == new_kid


async def test_create_pending_then_activate_an_eddsa_key(api: Api) -> None:
    created = await keys_call(api, "POST", "", purpose="credential-signing", algorithm="EdDSA")
    assert created.status_code == 201
    pending = created.json()["key"]
    assert (pending["state"], pending["algorithm"]) == ("pending", "EdDSA")
    # Published before it signs, so verifiers' caches hold it in time.
    assert pending["key_id"] in {k["kid"] for k in (await jwks(api))["keys"]}
    activated = await keys_call(api, "POST", f"/{pending['key_id']}/activate")
    assert activated.json()["key"]["state"] == "active"
    assert api.rt.keystore.signer("credential-signing", "EdDSA").key_id == pending["key_id"]
    # The ES256 key is untouched: one active key per purpose and algorithm.
    listing = (await keys_call(api, "GET", "")).json()["items"]
    active = {(k["purpose"], k["algorithm"]) for k in listing if k["state"] == "active"}
    assert active == {
        ("credential-signing", "ES256"),
        ("credential-signing", "EdDSA"),
        ("audit-signing", "EdDSA"),
        ("key-encryption", "A256GCM"),
    }
    assert all(k["public_jwk"] is None or "d" not in k["public_jwk"] for k in listing)


async def test_bad_key_requests_get_clear_typed_errors(api: Api) -> None:
    wrong = await keys_call(api, "POST", "", purpose="credential-signing", algorithm="A256GCM")
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "algorithm"
    audit = await keys_call(api, "POST", "/rotate", purpose="audit-signing")
    assert audit.status_code == 409
    assert "audit key history" in audit.json()["detail"]
    missing = await keys_call(api, "POST", "/nope/retire")
    assert missing.status_code == 404
    assert (await keys_call(api, "POST", "", purpose="signing")).status_code == 422
    for role in ("tenant-admin", "broker"):
        denied = await api.client.get("/v1/keys", headers=api.auth(role))
        assert denied.status_code == 403


async def test_a_key_encryption_key_in_use_cannot_be_retired(api: Api) -> None:
    listing = (await keys_call(api, "GET", "")).json()["items"]
    kek = next(k for k in listing if k["purpose"] == "key-encryption")
    refused = await keys_call(api, "POST", f"/{kek['key_id']}/retire")
    assert refused.status_code == 409
    assert "still wraps the data keys of" in refused.json()["detail"]
    rotated = await keys_call(api, "POST", "/rotate", purpose="key-encryption")
    assert rotated.status_code == 201
    tenant = await api.rt.tenancy.create_tenant("after-rotation")
    assert tenant.kek_id == rotated.json()["key"]["key_id"]
    assert (await keys_call(api, "POST", f"/{kek['key_id']}/retire")).status_code == 409


async def test_every_signature_is_counted_in_the_platform_audit_log(
    api: Api, roster: list[StudentRecord]
) -> None:
    await api.rt.keys.flush_usage()  # what start-up signed
    provider = await api.register_provider()
    student = pick_examples(roster).current
    tokens = [await issue(api, provider["id"], student) for _ in range(3)]
    kid = unverified(tokens[0])[0]["kid"]
    uri = unverified(tokens[0])[1]["status"]["status_list"]["uri"]
    assert (await api.client.get(urlsplit(uri).path)).status_code == 200
    written = await api.rt.keys.flush_usage()
    assert written >= 1
    usage = [e for e in await platform_events(api, "key-usage") if e["key_id"] == kid]
    assert sum(e["count"] for e in usage) == 4  # three credentials and one status list
    assert set(usage[-1]) == {
        "kind",
        "operation",
        "key_id",
        "purpose",
        "algorithm",
        "count",
        "from",
        "to",
        "node",
    }
    assert usage[-1]["purpose"] == "credential-signing"
    defaults = [e for e in await platform_events(api, "key-lifecycle") if e["actor"] == "keystore"]
    assert {e["action"] for e in defaults} == {"created-default"}
    assert await api.rt.keys.flush_usage() == 0  # nothing new


async def test_a_failed_flush_keeps_the_counts_for_the_next_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.rt.keys.flush_usage()
    await api.rt.keystore.signer("credential-signing").sign(b"x")

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("audit store down")

    with monkeypatch.context() as patched:
        patched.setattr(api.rt.audit, "append", broken)
        assert await api.rt.keys.flush_usage(raise_errors=False) == 0
        with pytest.raises(RuntimeError):
            await api.rt.keys.flush_usage()
    assert api.rt.keystore.usage.pending() == 1
    assert await api.rt.keys.flush_usage() == 1


async def test_the_jwks_is_a_document_pyjwt_reads(api: Api) -> None:
    document = await jwks(api)
    key_set = jwt.PyJWKSet.from_dict(document)
    assert {k.key_id for k in key_set.keys} == {k["kid"] for k in document["keys"]}


async def test_the_background_task_refreshes_and_flushes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pavilion.workflows.key_lifecycle import KeyService

    service = KeyService(api.rt.db, api.rt.keystore, api.rt.audit, flush_seconds=0.01)
    assert service.keystore is api.rt.keystore
    await api.rt.keys.flush_usage()

    async def refresh_fails() -> None:
        raise OSError("keystore file unreadable for a moment")

    monkeypatch.setattr(api.rt.keystore, "arefresh", refresh_fails)
    await service.start()
    await service.start()  # already running: no second task
    await api.rt.keystore.signer("credential-signing").sign(b"x")
    await until(lambda: api.rt.keystore.usage.pending() == 0, what="the usage flush loop")
    assert api.rt.keystore.usage.pending() == 0  # flushed by the loop despite the refresh error
    await service.stop()
    await service.stop()
