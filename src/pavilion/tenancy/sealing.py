"""Personal data sealed at rest under a tenant's data key, and keyed pseudonyms to find it.

A ``TenantSealer`` holds one tenant's data key, ready: ``seal``/``open`` are AES-256-GCM with a
random 96-bit nonce (stored in front of the ciphertext) and associated data that binds the
tenant, the table and the record (``record_aad``), so a sealed value copied to another row,
table or tenant does not open. ``pseudonym`` is HMAC-SHA-256 under a key derived from the data
key (its own label, apart from the verification subject pseudonym's) over the normalised
identifier: records are looked up by it without the identifier being stored. Crypto-shredding
a tenant (destroying its wrapped data key) makes every sealed value and pseudonym useless.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pavilion.errors import CryptoError

NONCE_BYTES: Final = 12
_RECORD_REF_LABEL: Final = b"pavilion/record-ref/v1"


def record_aad(tenant_id: str, table: str, record_id: str) -> bytes:
    """The associated data of a value sealed in ``table``'s row ``record_id`` of a tenant."""
    return f"pavilion/sealed/v1|{tenant_id}|{table}|{record_id}".encode()


def normalise_identifier(value: str) -> str:
    """What a pseudonym is computed over: the identifier trimmed, in Unicode NFC."""
    return unicodedata.normalize("NFC", value.strip())


class TenantSealer:
    """One tenant's data key, ready to seal, open and make pseudonyms (cheap to call)."""

    __slots__ = ("_aead", "_ref_key", "tenant_id")

    def __init__(self, tenant_id: str, data_key: bytes) -> None:
        self.tenant_id = tenant_id
        self._aead = AESGCM(data_key)
        self._ref_key = hmac.new(data_key, _RECORD_REF_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"TenantSealer({self.tenant_id!r})"

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as exc:
            raise CryptoError(
                "a sealed record does not open: tampered, moved, or its tenant's key is gone"
            ) from exc

    def pseudonym(self, identifier: str) -> str:
        """The keyed pseudonym (64 hex digits) of an identifier, stable per tenant."""
        data = normalise_identifier(identifier).encode("utf-8")
        return hmac.new(self._ref_key, data, hashlib.sha256).hexdigest()
