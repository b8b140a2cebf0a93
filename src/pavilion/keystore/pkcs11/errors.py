"""The errors of the PKCS#11 key backend, drawn in :mod:`pavilion.keystore`.

Every :class:`pkcs11.PKCS11Error` the module returns is translated into one of these where the
call is made (:mod:`~pavilion.keystore.pkcs11.sessions`, :mod:`~pavilion.keystore.pkcs11.ops`,
:mod:`~pavilion.keystore.pkcs11.worker`), with the original kept as ``__cause__``.
"""

from __future__ import annotations

from pavilion.errors import CryptoError, KeystoreUnavailable


class Pkcs11Error(CryptoError):
    """Any failure of the PKCS#11 key backend."""

    code = "pkcs11"
    title = "HSM operation failed"


class Pkcs11ModuleError(Pkcs11Error):
    """The PKCS#11 module (shared library) is missing or cannot be loaded."""

    code = "pkcs11-module"


class TokenNotFound(Pkcs11Error):
    """No token with the configured label (and slot) in the module."""

    code = "pkcs11-token-not-found"


class Pkcs11LoginFailed(Pkcs11Error):
    """The user PIN was refused (wrong, locked or expired)."""

    code = "pkcs11-login-failed"


class KeyNotFound(Pkcs11Error):
    """No key pair with that label on the token."""

    code = "pkcs11-key-not-found"


class KeyAlreadyExists(Pkcs11Error):
    """A key with that label already exists on the token."""

    code = "pkcs11-key-exists"


class UnsupportedKey(Pkcs11Error):
    """The key exists but is not an ES256 (P-256) or EdDSA (Ed25519) signing key."""

    code = "pkcs11-unsupported-key"


class Pkcs11Unavailable(Pkcs11Error, KeystoreUnavailable):
    """The token cannot do the work right now: closed, its worker died, an operation timed
    out, its session or device failed, or the key is gone from it. A
    :class:`~pavilion.errors.KeystoreUnavailable` (503 with ``Retry-After`` at the API)."""

    code = "pkcs11-unavailable"
    title = "HSM unavailable"


class Pkcs11OperationFailed(Pkcs11Error):
    """Any other error the module returned."""

    code = "pkcs11-operation-failed"


class Pkcs11DecryptFailed(Pkcs11Error):
    """AES-GCM decryption failed: the blob was tampered with, or the context is wrong."""

    code = "pkcs11-decrypt-failed"


def describe(exc: BaseException) -> str:
    """``PinIncorrect`` or ``DeviceError: detail``: python-pkcs11 errors are often message-less."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
