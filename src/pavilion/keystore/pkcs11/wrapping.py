"""Key replication between two tokens: the worker-side operations (wrap, unwrap, transport).

A standby token holds the same keys as the primary, as HSM clusters replicate them: every key
leaves the primary only wrapped (``CKM_AES_KEY_WRAP_PAD``, RFC 5649) under a replication
key-encryption key (AES-256, label :data:`REPLICATION_KEK_LABEL`) that both tokens hold, and is
unwrapped inside the standby with the same ``CKA_ID``, label and protection flags. The
replication KEK reaches the standby once, wrapped with RSA-OAEP under a session RSA-3072 key
pair the standby generates for the occasion (deleted afterwards): neither key is ever in the
clear outside a token.

Each function runs on the worker thread of its token's module (``worker.submit(fn, worker.ops,
ref, ...)``), takes and returns plain values (:class:`WrappedKey`, bytes) and translates
:class:`pkcs11.PKCS11Error` into :mod:`~pavilion.keystore.pkcs11.errors`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final, Literal

import pkcs11
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.constants import DEFAULT

from pavilion.keystore.pkcs11.errors import KeyNotFound, Pkcs11OperationFailed, describe
from pavilion.keystore.pkcs11.ops import ED25519_PARAMS, P256_PARAMS, ModuleOps

#: The label of the replication key-encryption key on both tokens (outside ``pavilion:``
#: labels, so the keystore never mistakes it for one of its own keys).
REPLICATION_KEK_LABEL: Final = "pavilion-replication-kek"

KeyKind = Literal["ES256", "EdDSA", "AES"]
_PARAMS: Final[dict[str, bytes]] = {"ES256": P256_PARAMS, "EdDSA": ED25519_PARAMS}
_TYPES: Final[dict[str, KeyType]] = {
    "ES256": KeyType.EC,
    "EdDSA": KeyType.EC_EDWARDS,
    "AES": KeyType.AES,
}
#: RSA-OAEP hashes, best first: SoftHSM2 2.6 accepts only SHA-1 (still sound for OAEP, which
#: needs no collision resistance); an HSM that takes SHA-256 gets SHA-256.
_OAEP: Final = ((Mechanism.SHA256, MGF.SHA256), (Mechanism.SHA_1, MGF.SHA1))
#: Capabilities python-pkcs11 would otherwise set to False, which tokens refuse on some classes.
_UNSET: Final = {
    Attribute.ENCRYPT: DEFAULT,
    Attribute.DECRYPT: DEFAULT,
    Attribute.WRAP: DEFAULT,
    Attribute.UNWRAP: DEFAULT,
    Attribute.SIGN: DEFAULT,
    Attribute.VERIFY: DEFAULT,
    Attribute.DERIVE: DEFAULT,
}


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A key as it leaves the primary: wrapped private (or secret) half, public half in clear."""

    cka_id: bytes
    label: str
    kind: KeyKind
    wrapped: bytes
    #: CKA_EC_POINT of the public key (key pairs only).
    ec_point: bytes = b""


def _failed(what: str, exc: pkcs11.PKCS11Error) -> Pkcs11OperationFailed:
    error = Pkcs11OperationFailed(f"{what}: {describe(exc)}")
    error.__cause__ = exc
    return error


def _one(session: Any, template: dict[Attribute, Any]) -> Any | None:
    found = list(session.get_objects(template))
    return found[0] if found else None


def find_kek(ops: ModuleOps, ref: int) -> bytes | None:
    """CKA_ID of the token's replication KEK, or None."""
    key = _one(
        ops._entry(ref).session,
        {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: REPLICATION_KEK_LABEL},
    )
    return None if key is None else bytes(key.id)


def _kek_template(extractable: bool) -> dict[Attribute, Any]:
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        # Extractable (only ever wrapped) so that it can reach a new standby in the same way.
        Attribute.EXTRACTABLE: extractable,
        Attribute.WRAP: True,
        Attribute.UNWRAP: True,
        Attribute.ENCRYPT: False,
        Attribute.DECRYPT: False,
        Attribute.SIGN: False,
        Attribute.VERIFY: False,
        Attribute.DERIVE: False,
    }


def generate_kek(ops: ModuleOps, ref: int) -> bytes:
    """Generate the replication KEK (AES-256, wrap/unwrap only) in the token; its CKA_ID."""
    cka_id = os.urandom(16)
    try:
        ops._entry(ref).session.generate_key(
            KeyType.AES,
            256,
            id=cka_id,
            label=REPLICATION_KEK_LABEL,
            store=True,
            template=_kek_template(True),
        )
    except pkcs11.PKCS11Error as exc:
        raise _failed("could not generate the replication key-encryption key", exc) from exc
    return cka_id


def open_transport(ops: ModuleOps, ref: int) -> tuple[bytes, bytes]:
    """A session RSA-3072 pair (unwrap only) in the receiving token: (modulus, exponent)."""
    try:
        public, private = ops._entry(ref).session.generate_keypair(
            KeyType.RSA,
            3072,
            store=False,
            public_template={Attribute.WRAP: True, Attribute.ENCRYPT: False},
            private_template={
                Attribute.UNWRAP: True,
                Attribute.DECRYPT: False,
                Attribute.SIGN: False,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            },
        )
    except pkcs11.PKCS11Error as exc:
        raise _failed("could not generate the transport RSA key pair", exc) from exc
    ops._keys[ref, b"transport"] = private
    return bytes(public[Attribute.MODULUS]), bytes(public[Attribute.PUBLIC_EXPONENT])


def wrap_kek(ops: ModuleOps, ref: int, kek_id: bytes, modulus: bytes, exponent: bytes) -> bytes:
    """The replication KEK wrapped with RSA-OAEP for the receiver's transport key."""
    session = ops._entry(ref).session
    kek = _one(session, {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: kek_id})
    if kek is None:
        raise KeyNotFound("the replication key-encryption key is gone from the primary token")
    public = session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.TOKEN: False,
            Attribute.MODULUS: modulus,
            Attribute.PUBLIC_EXPONENT: exponent,
            Attribute.WRAP: True,
        }
    )
    try:
        for hash_, mgf in _OAEP:
            try:
                wrapped = public.wrap_key(
                    kek, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=(hash_, mgf, None)
                )
                return bytes([_OAEP.index((hash_, mgf))]) + bytes(wrapped)
            except (pkcs11.ArgumentsBad, pkcs11.MechanismParamInvalid):
                continue
            except pkcs11.PKCS11Error as exc:
                raise _failed("could not wrap the replication key-encryption key", exc) from exc
        raise Pkcs11OperationFailed("the token offers no RSA-OAEP hash to wrap keys with")
    finally:
        public.destroy()


def unwrap_kek(ops: ModuleOps, ref: int, kek_id: bytes, blob: bytes) -> None:
    """Unwrap the replication KEK with the transport key, then delete the transport key."""
    session = ops._entry(ref).session
    private = ops._keys.pop((ref, b"transport"))
    hash_, mgf = _OAEP[blob[0]]
    try:
        private.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            blob[1:],
            id=kek_id,
            label=REPLICATION_KEK_LABEL,
            store=True,
            mechanism=Mechanism.RSA_PKCS_OAEP,
            mechanism_param=(hash_, mgf, None),
            template={**_UNSET, **_kek_template(True)},
        )
    except pkcs11.PKCS11Error as exc:
        raise _failed("could not unwrap the replication key-encryption key", exc) from exc
    finally:
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            if obj.key_type == KeyType.RSA and not obj[Attribute.TOKEN]:
                obj.destroy()
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY}):
            if obj.key_type == KeyType.RSA and not obj[Attribute.TOKEN]:
                obj.destroy()


def objects(ops: ModuleOps, ref: int) -> dict[bytes, str]:
    """CKA_ID -> label of every connector key (label ``pavilion:...``) on the token."""
    found: dict[bytes, str] = {}
    session = ops._entry(ref).session
    for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY):
        for obj in session.get_objects({Attribute.CLASS: cls}):
            label = obj.label or ""
            if label.startswith("pavilion:"):
                found[bytes(obj.id)] = label
    return found


def export_key(ops: ModuleOps, ref: int, kek_id: bytes, cka_id: bytes) -> WrappedKey:
    """Wrap one connector key under the replication KEK (CKR_KEY_UNEXTRACTABLE if it was
    generated non-extractable: it cannot be replicated, only rotated to a replicable key)."""
    session = ops._entry(ref).session
    kek = _one(session, {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: kek_id})
    if kek is None:
        raise KeyNotFound("the replication key-encryption key is gone from the primary token")
    key = _one(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: cka_id})
    if key is None:
        key = _one(session, {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: cka_id})
    if key is None:
        raise KeyNotFound(f"no key with CKA_ID {cka_id.hex()} on the primary token")
    kind: KeyKind
    point = b""
    if key.object_class == ObjectClass.SECRET_KEY:
        kind = "AES"
    else:
        record = ops._record(ops._entry(ref), key)
        kind, point = record.algorithm, record.ec_point
    try:
        wrapped = kek.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    except pkcs11.PKCS11Error as exc:
        raise _failed(f"could not wrap {kind} key '{key.label}'", exc) from exc
    return WrappedKey(cka_id, key.label, kind, bytes(wrapped), point)


def import_key(ops: ModuleOps, ref: int, kek_id: bytes, key: WrappedKey) -> None:
    """Unwrap a key inside the standby with its CKA_ID, label and flags (and its public half)."""
    session = ops._entry(ref).session
    kek = _one(session, {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: kek_id})
    if kek is None:
        raise KeyNotFound("the replication key-encryption key is missing on the standby token")
    protected = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: True,
    }
    public = None
    try:
        if key.kind == "AES":
            template = {**_UNSET, **protected, Attribute.ENCRYPT: True, Attribute.DECRYPT: True}
            object_class = ObjectClass.SECRET_KEY
        else:
            template = {**_UNSET, **protected, Attribute.SIGN: True}
            object_class = ObjectClass.PRIVATE_KEY
            public = session.create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: _TYPES[key.kind],
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.VERIFY: True,
                    Attribute.ID: key.cka_id,
                    Attribute.LABEL: key.label,
                    Attribute.EC_PARAMS: _PARAMS[key.kind],
                    Attribute.EC_POINT: key.ec_point,
                }
            )
        kek.unwrap_key(
            object_class,
            _TYPES[key.kind],
            key.wrapped,
            id=key.cka_id,
            label=key.label,
            store=True,
            mechanism=Mechanism.AES_KEY_WRAP_PAD,
            template=template,
        )
    except pkcs11.PKCS11Error as exc:
        if public is not None:  # no half pair left behind
            public.destroy()
        raise _failed(f"could not unwrap {key.kind} key '{key.label}' in the standby", exc) from exc
