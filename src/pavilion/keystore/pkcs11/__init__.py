"""Signing keys inside a PKCS#11 token (an HSM, or SoftHSM2 in development).

Keys are generated inside the token (``CKA_TOKEN``, ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``)
and never leave it; :class:`Pkcs11Signer` implements :class:`~pavilion.keystore.signer.Signer`
on top of them::

    config = Pkcs11Config(module_path=..., token_label="pavilion", user_pin=pin_from_env)
    async with Pkcs11Token(config) as token:
        signer = await token.aget_signer("issuer-2025")
        signature = await signer.sign(b"header.payload")   # raw r||s for ES256

The package, one thing per module:

    config.py     Pkcs11Config: module path, token label, PIN (environment or file), timeout
    errors.py     the typed errors every pkcs11.PKCS11Error is translated into
    records.py    plain, picklable records of the keys on a token
    sessions.py   the library, token lookup, login and lost-session recovery (worker thread)
    ops.py        ModuleOps: the key, AES-GCM and signing operations (worker thread)
    worker.py     one thread per module path that runs every call into the module
    token.py      Pkcs11Token: a logged-in token on its module's worker
    signer.py     Pkcs11Signer and KeyInfo: JWKs, thumbprints, signing and failover
    recovery.py   Recovery: when a failed token is tried again (backoff, one attempt at a time)
    wrapping.py   replication to a standby token: wrap, unwrap, KEK transport (worker thread)
    metrics.py    token up/down and failover signature counts (Prometheus)

Only ``sessions``, ``ops``, ``wrapping`` and ``worker`` import :mod:`pkcs11` (its loosely
typed objects stay there). This module re-exports the public API that the documentation and
HSM tooling use.
"""

from __future__ import annotations

from pavilion.keystore.pkcs11.config import DEFAULT_ENV_PREFIX, Pkcs11Config
from pavilion.keystore.pkcs11.errors import (
    KeyAlreadyExists,
    KeyNotFound,
    Pkcs11DecryptFailed,
    Pkcs11Error,
    Pkcs11LoginFailed,
    Pkcs11ModuleError,
    Pkcs11OperationFailed,
    Pkcs11Unavailable,
    TokenNotFound,
    UnsupportedKey,
)
from pavilion.keystore.pkcs11.records import SecretKeyRecord
from pavilion.keystore.pkcs11.signer import KeyInfo, Pkcs11Signer
from pavilion.keystore.pkcs11.token import Pkcs11Token

__all__ = [
    "DEFAULT_ENV_PREFIX",
    "KeyAlreadyExists",
    "KeyInfo",
    "KeyNotFound",
    "Pkcs11Config",
    "Pkcs11DecryptFailed",
    "Pkcs11Error",
    "Pkcs11LoginFailed",
    "Pkcs11ModuleError",
    "Pkcs11OperationFailed",
    "Pkcs11Signer",
    "Pkcs11Token",
    "Pkcs11Unavailable",
    "SecretKeyRecord",
    "TokenNotFound",
    "UnsupportedKey",
]
