"""Plain records crossing the worker boundary: what the token holds, as picklable values.

Operations of :class:`~pavilion.keystore.pkcs11.ops.ModuleOps` take and return these (and
``str``/``bytes``), so a pool of worker processes could replace the thread without changing
callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeyAlgorithm = Literal["ES256", "EdDSA"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key pair as read from the token: plain values only (picklable)."""

    label: str
    cka_id: bytes
    algorithm: KeyAlgorithm
    #: CKA_EC_POINT of the public key as the token returned it (usually DER-wrapped).
    ec_point: bytes
    token: bool
    private: bool
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    local: bool
    can_sign: bool


@dataclass(frozen=True, slots=True)
class SecretKeyRecord:
    """An AES key-encryption key as read from the token: plain values only (picklable)."""

    label: str
    cka_id: bytes
    #: CKA_VALUE_LEN in bytes (32 for AES-256).
    length: int
    token: bool
    sensitive: bool
    extractable: bool
    never_extractable: bool
    local: bool
