"""Issuer keys of trust chains: wrapped by the keystore's key-encryption key, bound to a tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pavilion.credentials.keys import (
    Pkcs11IssuerKeys,
    WrappedIssuerKeys,
    issuer_keys_for,
)
from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.software import SoftwareKeystore


@pytest.fixture
def keystore(tmp_path: Path) -> SoftwareKeystore:
    return SoftwareKeystore.open(tmp_path / "keys")


async def test_wrapped_keys_sign_and_reload_from_their_reference(
    keystore: SoftwareKeystore,
) -> None:
    store = issuer_keys_for(keystore)
    assert isinstance(store, WrappedIssuerKeys)
    assert store.backend == "software"
    for algorithm in ("ES256", "EdDSA"):
        reference, signer = await store.create("tenant-1", "root-1", algorithm)  # type: ignore[arg-type]
        assert "BEGIN" not in reference  # no plaintext key material in the stored reference
        assert set(json.loads(reference)) == {"label", "kek", "wrapped"}
        fresh = WrappedIssuerKeys(keystore)  # another process: nothing cached
        again = await fresh.load("tenant-1", reference)
        assert again.key_id == signer.key_id
        assert await fresh.load("tenant-1", reference) is again  # cached after the first unwrap
        assert len(await again.sign(b"message")) == 64


async def test_a_wrapped_key_does_not_open_for_another_tenant(keystore: SoftwareKeystore) -> None:
    store = WrappedIssuerKeys(keystore)
    reference, _ = await store.create("tenant-1", "root-1", "ES256")
    with pytest.raises(CryptoError):
        await WrappedIssuerKeys(keystore).load("tenant-2", reference)
    with pytest.raises(ConfigurationError):
        await store.load("tenant-1", json.dumps({"pkcs11_label": "x"}))


async def test_pkcs11_references_are_checked_before_the_token_is_asked() -> None:
    class NoToken:
        async def aget_signer(self, label: str) -> Any:
            raise AssertionError("the token must not be asked")

    store = Pkcs11IssuerKeys(NoToken())  # type: ignore[arg-type]
    assert store.backend == "pkcs11"
    with pytest.raises(ConfigurationError, match="backend mismatch"):
        await store.load("tenant-1", json.dumps({"label": "x"}))
    with pytest.raises(ConfigurationError, match="another tenant"):
        await store.load("tenant-1", json.dumps({"pkcs11_label": "pavilion-tenant-2-x"}))


def test_a_keystore_that_cannot_wrap_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        issuer_keys_for(object())
