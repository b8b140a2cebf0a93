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
from pavilion.keystore.pkcs11.errors import Pkcs11OperationFailed, Pkcs11Unavailable
from pavilion.keystore.pkcs11.metrics import FAILOVER_SIGNATURES
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
    """A key pair inside a PKCS#11 token, as a :class:`~pavilion.keystore.signer.Signer`.

    With a *standby* (the same key pair, same ``CKA_ID``, on another token: see
    :mod:`pavilion.keystore.replication`), a signature the token cannot make is made by the
    standby. The happy path is one call into the token; the failure state is one attribute
    read (:attr:`Pkcs11Token.recovery`).
    """

    __slots__ = (
        "_algorithm",
        "_cka_id",
        "_es256",
        "_info",
        "_jwk",
        "_kid",
        "_label",
        "_record",
        "_standby",
        "_token",
    )

    def __init__(
        self, token: Pkcs11Token, record: KeyRecord, standby: Pkcs11Token | None = None
    ) -> None:
        self._token = token
        self._record = record
        self._jwk = public_jwk(record)
        self._kid = self._jwk["kid"]
        self._label = record.label
        self._algorithm: Algorithm = record.algorithm
        self._es256 = record.algorithm == "ES256"
        self._cka_id = record.cka_id
        self._info = key_info(record, self._kid)
        #: The same key on the standby token (found by CKA_ID when it first signs).
        self._standby = None if standby is None else Pkcs11Signer(standby, record)

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

    @property
    def token(self) -> Pkcs11Token:
        return self._token

    @property
    def standby(self) -> Pkcs11Signer | None:
        """The same key on the standby token, if one is configured."""
        return self._standby

    def with_standby(self, standby: Pkcs11Token | None) -> Pkcs11Signer:
        """This key, failing over to the same ``CKA_ID`` on ``standby``."""
        return Pkcs11Signer(self._token, self._record, standby)

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    def _input(self, message: bytes) -> bytes:
        return hashlib.sha256(message).digest() if self._es256 else bytes(message)

    async def sign(self, message: bytes) -> bytes:
        """Raw JOSE signature: ``r || s`` for ES256, the 64-byte Ed25519 signature for EdDSA."""
        data = self._input(message)
        token = self._token
        if token.recovery.failed:
            return await self._sign_degraded(data)
        worker, ref = token._session()
        future = worker.submit_async(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        try:
            return await token._await(future)
        except Pkcs11Unavailable as exc:
            token._failed(exc)
            if self._standby is None:
                raise
        return await self._on_standby(data)

    async def _sign_input(self, data: bytes) -> bytes:
        """:meth:`sign` of an already hashed input (what a primary hands its standby)."""
        token = self._token
        if token.recovery.failed:
            return await self._sign_degraded(data)
        if not token.started:  # a standby logs in on first use
            try:
                await token.arecover()
            except Pkcs11Unavailable as exc:
                token._failed(exc)
                raise
        worker, ref = token._session()
        future = worker.submit_async(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        try:
            return await token._await(future)
        except Pkcs11Unavailable as exc:
            token._failed(exc)
            raise

    async def _sign_degraded(self, data: bytes) -> bytes:
        """The token failed: recover it if an attempt is due, else fail over (or fail fast)."""
        token = self._token
        if token.recovery.claim():
            try:
                await token.arecover()
                worker, ref = token._session()
                signature = await token._await(
                    worker.submit_async(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
                )
            except Pkcs11Unavailable as exc:
                token._failed(exc)
            except BaseException:
                token.recovery.release()
                raise
            else:
                token._recovered()
                return signature
        if self._standby is None:
            raise token.unavailable()
        return await self._on_standby(data)

    async def _on_standby(self, data: bytes) -> bytes:
        standby = self._standby
        assert standby is not None
        try:
            signature = await standby._sign_input(data)
        except Pkcs11Unavailable as exc:
            raise self._both_down(exc) from exc
        FAILOVER_SIGNATURES.labels(standby._token.label).inc()
        return signature

    def _both_down(self, standby_error: Pkcs11Unavailable) -> Pkcs11Unavailable:
        primary = self._token.unavailable()
        return Pkcs11Unavailable(
            f"{primary.detail}; its standby cannot sign either: {standby_error.detail}",
            retry_after_s=min(primary.retry_after_s, standby_error.retry_after_s),
        )

    def sign_blocking(self, message: bytes) -> bytes:
        """:meth:`sign` for threads and CLI code (never call it on an event loop)."""
        return self._sign_input_blocking(self._input(message), self._standby is not None)

    def _sign_input_blocking(self, data: bytes, has_fallback: bool) -> bytes:
        token = self._token
        if not token.recovery.failed:
            try:
                if not token.started:  # a standby logs in on first use
                    token.recover_blocking()
                worker, ref = token._session()
                return token._wait(
                    worker.submit(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
                )
            except Pkcs11Unavailable as exc:
                token._failed(exc)
                if not has_fallback:
                    raise
        elif token.recovery.claim():
            try:
                token.recover_blocking()
                worker, ref = token._session()
                signature = token._wait(
                    worker.submit(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
                )
            except Pkcs11Unavailable as exc:
                token._failed(exc)
            except BaseException:
                token.recovery.release()
                raise
            else:
                token._recovered()
                return signature
        if self._standby is None:
            raise token.unavailable()
        try:
            signature = self._standby._sign_input_blocking(data, False)
        except Pkcs11Unavailable as exc:
            raise self._both_down(exc) from exc
        FAILOVER_SIGNATURES.labels(self._standby._token.label).inc()
        return signature
