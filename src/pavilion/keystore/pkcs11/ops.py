"""The key operations the worker thread runs on a PKCS#11 module.

:class:`ModuleOps` extends :class:`~pavilion.keystore.pkcs11.sessions.ModuleSessions` with
what a keystore needs from a token: generate, find, list, relabel and destroy ES256 (P-256) and
EdDSA (Ed25519) key pairs; generate and list AES-256 key-encryption keys and wrap with
AES-GCM inside the token; sign (``CKM_ECDSA`` over a host-computed digest, ``CKM_EDDSA`` over
the message). Operations take and return plain values (:mod:`~pavilion.keystore.pkcs11.records`)
and translate every :class:`pkcs11.PKCS11Error` into :mod:`~pavilion.keystore.pkcs11.errors`.
A lost session is reopened (and logged in) once before an error reaches the caller.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Final

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.mechanisms import GCMParams

from pavilion.keystore.pkcs11.errors import (
    KeyAlreadyExists,
    KeyNotFound,
    Pkcs11DecryptFailed,
    Pkcs11Error,
    Pkcs11OperationFailed,
    Pkcs11Unavailable,
    UnsupportedKey,
    describe,
)
from pavilion.keystore.pkcs11.records import KeyAlgorithm, KeyRecord, SecretKeyRecord
from pavilion.keystore.pkcs11.sessions import (
    SESSION_LOST,
    TOKEN_FAILED,
    ModuleSessions,
    OpenToken,
)

# DER-encoded EC_PARAMS: the named-curve OIDs (and the PKCS#11 3.0 printable-string form for
# Ed25519 that some tokens report).
P256_PARAMS: Final = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7
ED25519_PARAMS: Final = bytes.fromhex("06032b6570")  # 1.3.101.112
_ED25519_PARAMS_PRINTABLE: Final = b"\x13\x0cedwards25519"

_SECRET_FLAGS: Final = (
    Attribute.KEY_TYPE,
    Attribute.VALUE_LEN,
    Attribute.TOKEN,
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
)

#: Tag length of the AES-GCM key wrapping (bits).
GCM_TAG_BITS: Final = 128

_PRIVATE_FLAGS: Final = (
    Attribute.TOKEN,
    Attribute.PRIVATE,
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.ALWAYS_SENSITIVE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
    Attribute.SIGN,
    Attribute.EC_PARAMS,
)

_GENERATION: Final[dict[str, tuple[KeyType, Mechanism, bytes]]] = {
    "ES256": (KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, P256_PARAMS),
    "EdDSA": (KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, ED25519_PARAMS),
}

_SIGNING: Final[dict[str, Mechanism]] = {"ES256": Mechanism.ECDSA, "EdDSA": Mechanism.EDDSA}


def _algorithm_of(key_type: Any, ec_params: Any) -> KeyAlgorithm | None:
    if key_type == KeyType.EC and ec_params == P256_PARAMS:
        return "ES256"
    if key_type == KeyType.EC_EDWARDS and ec_params in (
        ED25519_PARAMS,
        _ED25519_PARAMS_PRINTABLE,
    ):
        return "EdDSA"
    return None


class ModuleOps(ModuleSessions):
    """State and operations of one PKCS#11 module. Only the worker thread calls these."""

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def _private_keys(session: Any, match: dict[Attribute, Any]) -> list[Any]:
        return list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, **match}))

    def _record(self, entry: OpenToken, private_key: Any) -> KeyRecord:
        label = private_key.label
        key_type = private_key[Attribute.KEY_TYPE]
        flags = (
            private_key.get_attributes(_PRIVATE_FLAGS)
            if key_type in (KeyType.EC, KeyType.EC_EDWARDS)
            else {}
        )
        algorithm = _algorithm_of(key_type, flags.get(Attribute.EC_PARAMS))
        if algorithm is None:
            raise UnsupportedKey(
                f"key '{label}' on PKCS#11 token '{entry.label}' is not an ES256 (P-256) or "
                "EdDSA (Ed25519) signing key"
            )
        cka_id = bytes(private_key.id)
        publics = list(
            entry.session.get_objects(
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: cka_id}
            )
        )
        if not publics:
            raise KeyNotFound(
                f"key '{label}' on PKCS#11 token '{entry.label}' has no public key object "
                f"(CKA_ID {cka_id.hex()})"
            )
        return KeyRecord(
            label=label,
            cka_id=cka_id,
            algorithm=algorithm,
            ec_point=bytes(publics[0][Attribute.EC_POINT]),
            token=bool(flags[Attribute.TOKEN]),
            private=bool(flags[Attribute.PRIVATE]),
            sensitive=bool(flags[Attribute.SENSITIVE]),
            extractable=bool(flags[Attribute.EXTRACTABLE]),
            always_sensitive=bool(flags[Attribute.ALWAYS_SENSITIVE]),
            never_extractable=bool(flags[Attribute.NEVER_EXTRACTABLE]),
            local=bool(flags[Attribute.LOCAL]),
            can_sign=bool(flags[Attribute.SIGN]),
        )

    def generate(
        self, ref: int, label: str, algorithm: str, extractable: bool = False
    ) -> KeyRecord:
        """Generate a sensitive key pair inside the token (extractable: only ever wrapped)."""
        entry = self._entry(ref)
        if algorithm not in _GENERATION:
            raise UnsupportedKey(f"cannot generate a '{algorithm}' key: use ES256 or EdDSA")
        if self._private_keys(entry.session, {Attribute.LABEL: label}):
            raise KeyAlreadyExists(
                f"a key labelled '{label}' already exists on PKCS#11 token '{entry.label}'"
            )
        key_type, mechanism, params = _GENERATION[algorithm]
        cka_id = os.urandom(16)
        try:
            _public, private_key = entry.session.generate_keypair(
                key_type,
                mechanism=mechanism,
                id=cka_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: params,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.VERIFY: True,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: extractable,
                    Attribute.SIGN: True,
                    Attribute.DERIVE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not generate {algorithm} key '{label}' on PKCS#11 token "
                f"'{entry.label}': {describe(exc)}"
            ) from exc
        self._keys[ref, cka_id] = private_key
        return self._record(entry, private_key)

    def find(self, ref: int, label: str) -> KeyRecord:
        entry = self._entry(ref)
        found = self._private_keys(entry.session, {Attribute.LABEL: label})
        if not found:
            raise KeyNotFound(f"no key labelled '{label}' on PKCS#11 token '{entry.label}'")
        if len(found) > 1:
            raise Pkcs11OperationFailed(
                f"{len(found)} private keys are labelled '{label}' on PKCS#11 token "
                f"'{entry.label}': labels must be unique"
            )
        record = self._record(entry, found[0])
        self._keys[ref, record.cka_id] = found[0]
        return record

    def list_keys(self, ref: int) -> list[KeyRecord]:
        """Every ES256/EdDSA key pair on the token (other keys are left out)."""
        entry = self._entry(ref)
        records = []
        for private_key in self._private_keys(entry.session, {}):
            with contextlib.suppress(UnsupportedKey, KeyNotFound):
                records.append(self._record(entry, private_key))
        return sorted(records, key=lambda r: r.label)

    def destroy(self, ref: int, label: str) -> None:
        entry = self._entry(ref)
        objects = [
            obj
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for obj in entry.session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: label})
        ]
        if not objects:
            raise KeyNotFound(f"no key labelled '{label}' on PKCS#11 token '{entry.label}'")
        for obj in objects:
            self._keys.pop((ref, bytes(obj.id)), None)
            obj.destroy()

    def relabel(self, ref: int, cka_id: bytes, label: str) -> None:
        """Set CKA_LABEL on every object with this CKA_ID (both halves of a pair, or a secret
        key). Labels carry key state for :mod:`pavilion.keystore.hsm`."""
        entry = self._entry(ref)
        objects = list(entry.session.get_objects({Attribute.ID: cka_id}))
        if not objects:
            raise KeyNotFound(
                f"no object with CKA_ID {cka_id.hex()} on PKCS#11 token '{entry.label}'"
            )
        try:
            for obj in objects:
                obj[Attribute.LABEL] = label
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not relabel key {cka_id.hex()} on PKCS#11 token '{entry.label}': "
                f"{describe(exc)}"
            ) from exc

    def _secret_record(self, key: Any) -> SecretKeyRecord:
        flags = key.get_attributes(_SECRET_FLAGS)
        return SecretKeyRecord(
            label=key.label,
            cka_id=bytes(key.id),
            length=int(flags[Attribute.VALUE_LEN]),
            token=bool(flags[Attribute.TOKEN]),
            sensitive=bool(flags[Attribute.SENSITIVE]),
            extractable=bool(flags[Attribute.EXTRACTABLE]),
            never_extractable=bool(flags[Attribute.NEVER_EXTRACTABLE]),
            local=bool(flags[Attribute.LOCAL]),
        )

    def generate_secret(self, ref: int, label: str, extractable: bool = False) -> SecretKeyRecord:
        """Generate a sensitive AES-256 key (encrypt/decrypt only) inside the token."""
        entry = self._entry(ref)
        cka_id = os.urandom(16)
        try:
            key = entry.session.generate_key(
                KeyType.AES,
                256,
                id=cka_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: extractable,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not generate AES key '{label}' on PKCS#11 token '{entry.label}': "
                f"{describe(exc)}"
            ) from exc
        self._keys[ref, cka_id] = key
        return self._secret_record(key)

    def list_secret_keys(self, ref: int) -> list[SecretKeyRecord]:
        """Every AES secret key on the token."""
        entry = self._entry(ref)
        found = entry.session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        )
        return sorted((self._secret_record(k) for k in found), key=lambda r: r.label)

    def _secret_key(self, ref: int, cka_id: bytes) -> Any:
        key = self._keys.get((ref, cka_id))
        if key is None:
            entry = self._entry(ref)
            found = list(
                entry.session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: cka_id}
                )
            )
            if not found:  # the token lost it (or a standby was never given it)
                raise Pkcs11Unavailable(
                    f"the AES key with CKA_ID {cka_id.hex()} is gone from PKCS#11 token "
                    f"'{entry.label}'"
                )
            key = self._keys[ref, cka_id] = found[0]
        return key

    def encrypt_gcm(self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """CKM_AES_GCM with a caller-chosen 96-bit IV; returns ciphertext || 128-bit tag."""
        return self._gcm(ref, cka_id, iv, aad, data, decrypt=False)

    def decrypt_gcm(self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """The inverse of :meth:`encrypt_gcm`; :class:`Pkcs11DecryptFailed` on a bad tag."""
        return self._gcm(ref, cka_id, iv, aad, data, decrypt=True)

    def _gcm(
        self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes, *, decrypt: bool
    ) -> bytes:
        params = GCMParams(iv, aad, GCM_TAG_BITS)
        retried = False
        while True:
            try:
                key = self._secret_key(ref, cka_id)
                run = key.decrypt if decrypt else key.encrypt
                return bytes(run(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))
            except pkcs11.PKCS11Error as exc:
                self._keys.pop((ref, cka_id), None)
                if not retried and isinstance(exc, SESSION_LOST):
                    retried = True
                    self._reopen(ref)
                    continue
                if decrypt and isinstance(
                    exc,
                    pkcs11.EncryptedDataInvalid
                    | pkcs11.EncryptedDataLenRange
                    | pkcs11.GeneralError,
                ):
                    raise Pkcs11DecryptFailed(
                        "wrapped data key does not open: tampered or wrong context"
                    ) from exc
                if isinstance(exc, TOKEN_FAILED):
                    raise Pkcs11Unavailable(
                        f"PKCS#11 token '{self._tokens[ref].label}' cannot use AES key "
                        f"{cka_id.hex()} ({describe(exc)})"
                    ) from exc
                raise Pkcs11OperationFailed(
                    f"PKCS#11 AES-GCM {'decryption' if decrypt else 'encryption'} failed with "
                    f"key {cka_id.hex()} on token '{self._entry(ref).label}': {describe(exc)}"
                ) from exc

    def _signing_key(self, ref: int, cka_id: bytes) -> Any:
        key = self._keys.get((ref, cka_id))
        if key is None:
            entry = self._entry(ref)
            found = self._private_keys(entry.session, {Attribute.ID: cka_id})
            if not found:  # the token lost it (or a standby was never given it)
                raise Pkcs11Unavailable(
                    f"the key with CKA_ID {cka_id.hex()} is gone from PKCS#11 token '{entry.label}'"
                )
            key = self._keys[ref, cka_id] = found[0]
        return key

    def sign(self, ref: int, cka_id: bytes, algorithm: str, data: bytes) -> bytes:
        """CKM_ECDSA over a host-computed digest (ES256) or CKM_EDDSA over the message.

        A lost session is reopened (and logged in) once before the error reaches the caller.
        """
        retried = False
        while True:
            try:
                key = self._signing_key(ref, cka_id)
                return bytes(key.sign(data, mechanism=_SIGNING[algorithm]))
            except pkcs11.PKCS11Error as exc:
                self._keys.pop((ref, cka_id), None)
                if not retried and isinstance(exc, SESSION_LOST):
                    retried = True
                    try:
                        self._reopen(ref)
                    except Pkcs11Error as lost:
                        raise self._token_failed(ref, algorithm, cka_id, lost) from exc
                    continue
                if isinstance(exc, TOKEN_FAILED):
                    raise self._token_failed(ref, algorithm, cka_id, exc) from exc
                raise Pkcs11OperationFailed(
                    f"PKCS#11 {algorithm} signing failed with key {cka_id.hex()} on token "
                    f"'{self._entry(ref).label}': {describe(exc)}"
                ) from exc

    def _token_failed(
        self, ref: int, algorithm: str, cka_id: bytes, exc: BaseException
    ) -> Pkcs11Unavailable:
        entry = self._tokens.get(ref)
        label = entry.label if entry is not None else "?"
        return Pkcs11Unavailable(
            f"PKCS#11 token '{label}' cannot sign with {algorithm} key {cka_id.hex()} "
            f"({describe(exc)}); it is being recovered"
        )
