"""Privacy receipts: served with their inclusion proof, and every tampering detected."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector_support import Api
from pavilion.audit.checkpoint import verifier_key
from pavilion.jose import b64url, b64url_decode
from pavilion.privacy.errors import ReceiptInvalid
from pavilion.privacy.receipts import ReceiptDraft, sha256_hex, verify_bundle


async def issue(api: Api, n: int) -> list[str]:
    ids = []
    for i in range(n):
        async with api.rt.db.transaction(api.tenant_id) as session:
            receipt = await api.rt.privacy.receipts.issue(
                session,
                api.tenant_id,
                ReceiptDraft(
                    kind="psi.batch",
                    mechanism="test",
                    parameters={"n": i},
                    inputs_sha256=sha256_hex(f"in{i}"),
                    outputs_sha256=sha256_hex({"out": i}),
                ),
            )
        ids.append(receipt.id)
    return ids


def trusted(api: Api) -> dict[str, Any]:
    return {
        "jwks": api.rt.privacy.receipts.jwks(),
        "verifier_key": api.rt.audit.verifier_key_for(api.tenant_id),
        "origin": api.rt.audit.origin(api.tenant_id),
    }


async def test_receipts_verify_and_every_tampering_fails(api: Api) -> None:
    ids = await issue(api, 3)
    listing = await api.client.get(
        "/v1/privacy/receipts?kind=psi.batch&limit=2", headers=api.auth("auditor")
    )
    assert [item["id"] for item in listing.json()["items"]] == ids[:2]
    following = await api.client.get(
        f"/v1/privacy/receipts?limit=2&after={listing.json()['next']}", headers=api.auth("auditor")
    )
    assert [item["id"] for item in following.json()["items"]] == ids[2:]
    assert (
        await api.client.get("/v1/privacy/receipts?kind=nope", headers=api.auth("auditor"))
    ).status_code == 422
    assert (
        await api.client.get(f"/v1/privacy/receipts/{ids[0]}", headers=api.auth("broker"))
    ).status_code == 403
    assert (
        await api.client.get("/v1/privacy/receipts/missing", headers=api.auth("auditor"))
    ).status_code == 404

    bundle = (
        await api.client.get(f"/v1/privacy/receipts/{ids[1]}", headers=api.auth("auditor"))
    ).json()
    verified = verify_bundle(bundle, **trusted(api))
    assert verified.payload["parameters"] == {"n": 1}
    assert verified.tree_size == 3

    def tampered(change: Any) -> dict[str, Any]:
        copied = copy.deepcopy(bundle)
        change(copied)
        return copied

    header, payload, signature = bundle["receipt"].split(".")
    claims = json.loads(b64url_decode(payload))
    claims["parameters"] = {"n": 99}
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    cases = {
        "signature": lambda b: b.__setitem__("receipt", forged),
        "leaf": lambda b: b["audit"].__setitem__("leaf_hash", "00" * 32),
        "index": lambda b: b["audit"].__setitem__("index", 0),
        "proof": lambda b: b["audit"]["inclusion_proof"].__setitem__(0, "11" * 32),
        "size": lambda b: b["audit"].__setitem__("tree_size", 2),
        "checkpoint": lambda b: b["audit"].__setitem__(
            "checkpoint", b["audit"]["checkpoint"].replace("\n3\n", "\n4\n")
        ),
        "malformed": lambda b: b.pop("audit"),
    }
    for name, change in cases.items():
        with pytest.raises(ReceiptInvalid):
            verify_bundle(tampered(change), **trusted(api))
        assert name

    other_jwks = {"keys": [dict(bundle["jwks"]["keys"][0], x=b64url(b"\x01" * 32))]}
    with pytest.raises(ReceiptInvalid, match="signature"):
        verify_bundle(bundle, **(trusted(api) | {"jwks": other_jwks}))
    rogue = verifier_key("pavilion.local", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ReceiptInvalid, match="checkpoint"):
        verify_bundle(bundle, **(trusted(api) | {"verifier_key": rogue}))
    with pytest.raises(ReceiptInvalid, match="checkpoint"):
        verify_bundle(bundle, **(trusted(api) | {"origin": "elsewhere/log"}))
