"""Where the trust-chain keys live: tenant issuer roots and data providers' issuing keys.

These keys are per tenant and per provider, so they are not the keystore's purpose keys.
:class:`IssuerKeyStore` is the narrow interface; a key is created once, its reference is
stored in the database (``credential_issuer_keys.key_ref``), and it is loaded by reference:

* :class:`WrappedIssuerKeys` (the embedded default) generates the key with ``cryptography``
  and keeps it only wrapped under the keystore's key-encryption key (AES-256-GCM, the tenant
  and key label as associated data), exactly as tenant data keys are kept; it is unwrapped
  into memory when first used.
* :class:`Pkcs11IssuerKeys` generates the key inside a PKCS#11 token (non-extractable) and
  stores only its label: the private key never leaves the HSM.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Literal, Protocol, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.pkcs11.token import Pkcs11Token
from pavilion.keystore.signer import Algorithm, Signer
from pavilion.keystore.software_signer import SoftwareSigner

Backend = Literal["software", "pkcs11"]


class KeyWrapper(Protocol):
    """The part of the keystore that wraps data keys (both keystore backends have it)."""

    def wrap_key(self, data_key: bytes, context: bytes) -> tuple[str, bytes]: ...

    def unwrap_key(self, kek_id: str, blob: bytes, context: bytes) -> bytes: ...


class IssuerKeyStore(Protocol):
    @property
    def backend(self) -> Backend: ...

    async def create(self, tenant_id: str, label: str, algorithm: Algorithm) -> tuple[str, Signer]:
        """A new key pair; returns (reference to store, signer)."""
        ...

    async def load(self, tenant_id: str, key_ref: str) -> Signer: ...


def new_label(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(6)}"


def _context(tenant_id: str, label: str) -> bytes:
    return f"pavilion/issuer-key/v1|{tenant_id}|{label}".encode()


class WrappedIssuerKeys:
    """Issuer keys generated in software and stored wrapped by the keystore's KEK."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper
        self._signers: dict[tuple[str, str], Signer] = {}

    @property
    def backend(self) -> Backend:
        return "software"

    async def create(self, tenant_id: str, label: str, algorithm: Algorithm) -> tuple[str, Signer]:
        private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        if algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kek_id, blob = self._wrapper.wrap_key(der, _context(tenant_id, label))
        reference = json.dumps(
            {"label": label, "kek": kek_id, "wrapped": base64.b64encode(blob).decode("ascii")}
        )
        signer = SoftwareSigner(private)
        self._signers[tenant_id, reference] = signer
        return reference, signer

    async def load(self, tenant_id: str, key_ref: str) -> Signer:
        cached = self._signers.get((tenant_id, key_ref))
        if cached is not None:
            return cached
        try:
            parsed = json.loads(key_ref)
            label, kek_id = parsed["label"], parsed["kek"]
            blob = base64.b64decode(parsed["wrapped"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                "this issuer key was not made by the software issuer key store"
            ) from exc
        der = self._wrapper.unwrap_key(kek_id, blob, _context(tenant_id, label))
        private = serialization.load_der_private_key(der, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise CryptoError("an issuer key unwrapped to something that is not a signing key")
        signer = SoftwareSigner(private)
        self._signers[tenant_id, key_ref] = signer
        return signer


class Pkcs11IssuerKeys:
    """Issuer keys generated inside a PKCS#11 token; only the label is stored."""

    def __init__(self, token: Pkcs11Token) -> None:
        self._token = token
        self._signers: dict[str, Signer] = {}

    @property
    def backend(self) -> Backend:
        return "pkcs11"

    async def create(self, tenant_id: str, label: str, algorithm: Algorithm) -> tuple[str, Signer]:
        hsm_label = f"pavilion-{tenant_id[:8]}-{label}"
        signer = await self._token.agenerate_key(hsm_label, algorithm)
        reference = json.dumps({"pkcs11_label": hsm_label})
        self._signers[reference] = signer
        return reference, signer

    async def load(self, tenant_id: str, key_ref: str) -> Signer:
        cached = self._signers.get(key_ref)
        if cached is not None:
            return cached
        try:
            label = json.loads(key_ref)["pkcs11_label"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                "this issuer key was not made in a PKCS#11 token (backend mismatch)"
            ) from exc
        if not isinstance(label, str) or not label.startswith(f"pavilion-{tenant_id[:8]}-"):
            raise ConfigurationError("this issuer key belongs to another tenant")
        signer = await self._token.aget_signer(label)
        self._signers[key_ref] = signer
        return signer


def issuer_keys_for(keystore: object) -> IssuerKeyStore:
    """The issuer key store that matches the keystore backend.

    A PKCS#11 keystore that exposes its open token as ``token`` gets HSM-resident issuer keys;
    anything that can wrap keys gets wrapped software keys.
    """
    token = getattr(keystore, "token", None)
    if isinstance(token, Pkcs11Token):
        return Pkcs11IssuerKeys(token)
    if not hasattr(keystore, "wrap_key") or not hasattr(keystore, "unwrap_key"):
        raise ConfigurationError("the keystore can neither wrap keys nor hold them in a token")
    return WrappedIssuerKeys(cast(KeyWrapper, keystore))
