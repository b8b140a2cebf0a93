"""A key pair inside a PKCS#11 token as a :class:`~pavilion.keystore.signer.Signer`.

:class:`Pkcs11Signer` builds the public JWK (``kid`` = RFC 7638 thumbprint) and the typed
:class:`KeyInfo` from the plain :class:`~pavilion.keystore.pkcs11.records.KeyRecord` the worker
returned, and signs through its token's worker: ES256 is SHA-256 on the host and ``CKM_ECDSA``
(raw ``r || s``) in the token; EdDSA is ``CKM_EDDSA`` over the message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pavilion.jose import b64url, jwk_thumbprint, jws_alg
from pavilion.keystore.pkcs11.errors import Pkcs11OperationFailed
from pavilion.keystore.pkcs11.records import KeyRecord
from pavilion.keystore.signer import Algorithm

if TYPE_CHECKING:
    from pavilion.keystore.pkcs11.token import Pkcs11Token

_POINT_SIZE: Final[dict[str, int]] = {"ES256": 65, "EdDSA": 32}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A signing key pair on the token, and the protection flags of its private half."""

    label: str
    #: RFC 7638 thumbprint of the public JWK (the ``kid``).
    key_id: str
    algorithm: Algorithm
    #: CKA_ID, hex.
    cka_id: str
    on_token: bool
    private: bool
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    #: Generated inside the token (CKA_LOCAL).
    local: bool


def _public_point(record: KeyRecord) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; some tokens send the bare point."""
    raw, size = record.ec_point, _POINT_SIZE[record.algorithm]
    if len(raw) == size + 2 and raw[0] == 0x04 and raw[1] == size:
        return raw[2:]
    if len(raw) == size:
        return raw
    raise Pkcs11OperationFailed(
        f"key '{record.label}': unexpected CKA_EC_POINT encoding ({len(raw)} bytes)"
    )


def public_jwk(record: KeyRecord) -> dict[str, str]:
    """The public JWK with ``kid`` (RFC 7638 thumbprint) and ``alg``."""
    point = _public_point(record)
    jwk: dict[str, str]
    try:
        if record.algorithm == "ES256":
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # on the curve
            jwk = {"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}
        else:
            ed25519.Ed25519PublicKey.from_public_bytes(point)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(point)}
    except ValueError as exc:
        raise Pkcs11OperationFailed(
            f"key '{record.label}': the token returned an invalid public key"
        ) from exc
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk["alg"] = jws_alg(record.algorithm)
    return jwk


def key_info(record: KeyRecord, kid: str) -> KeyInfo:
    return KeyInfo(
        label=record.label,
        key_id=kid,
        algorithm=record.algorithm,
        cka_id=record.cka_id.hex(),
        on_token=record.token,
        private=record.private,
        sensitive=record.sensitive,
        extractable=record.extractable,
        always_sensitive=record.always_sensitive,
        never_extractable=record.never_extractable,
        local=record.local,
    )


class Pkcs11Signer:
    """A key pair inside a PKCS#11 token, as a :class:`~pavilion.keystore.signer.Signer`."""

    __slots__ = ("_algorithm", "_cka_id", "_es256", "_info", "_jwk", "_kid", "_label", "_token")

    def __init__(self, token: Pkcs11Token, record: KeyRecord) -> None:
        self._token = token
        self._jwk = public_jwk(record)
        self._kid = self._jwk["kid"]
        self._label = record.label
        self._algorithm: Algorithm = record.algorithm
        self._es256 = record.algorithm == "ES256"
        self._cka_id = record.cka_id
        self._info = key_info(record, self._kid)

    def __repr__(self) -> str:
        return f"<Pkcs11Signer '{self._label}' {self._algorithm} kid={self._kid}>"

    @property
    def key_id(self) -> str:
        """RFC 7638 thumbprint of the public JWK."""
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def label(self) -> str:
        return self._label

    @property
    def info(self) -> KeyInfo:
        """The key's flags as read when this signer was made."""
        return self._info

    @property
    def cka_id(self) -> bytes:
        return self._cka_id

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    def _input(self, message: bytes) -> bytes:
        return hashlib.sha256(message).digest() if self._es256 else bytes(message)

    async def sign(self, message: bytes) -> bytes:
        """Raw JOSE signature: ``r || s`` for ES256, the 64-byte Ed25519 signature for EdDSA."""
        data = self._input(message)
        worker, ref = self._token._session()
        future = worker.submit_async(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        return await self._token._await(future)

    def sign_blocking(self, message: bytes) -> bytes:
        """:meth:`sign` for threads and CLI code (never call it on an event loop)."""
        data = self._input(message)
        worker, ref = self._token._session()
        future = worker.submit(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        return self._token._wait(future)
