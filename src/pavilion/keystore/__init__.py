"""Keys: signing keys and key-encryption keys behind one narrow interface.

The software keystore (``software.py``) is the embedded default; a PKCS#11 token is the
production backend. Callers only see :class:`~pavilion.keystore.signer.Signer`.

Errors the keystore adds to the tree of :mod:`pavilion.errors`, where they live:

    PavilionError
    ├── NotFound
    │   └── KeyNotFoundError        base.py: no key with that id or name                     404
    ├── Conflict
    │   └── KeyLifecycleError       base.py: a step the key's state or use forbids           409
    └── CryptoError
        ├── KeystoreUnavailable     (errors.py) the keys cannot be used right now             503
        │   └── Pkcs11Unavailable   also a Pkcs11Error (below)
        └── Pkcs11Error             the PKCS#11 backend failed                               500
            ├── Pkcs11ModuleError       the module (shared library) is missing or unloadable
            ├── TokenNotFound           no token with that label (and slot)
            ├── Pkcs11LoginFailed       the user PIN was refused
            ├── KeyNotFound             no key pair with that label on the token
            ├── KeyAlreadyExists        a key with that label exists
            ├── UnsupportedKey          not an ES256 or EdDSA signing key
            ├── Pkcs11Unavailable       closed, worker died, timed out, device or key gone   503
            ├── Pkcs11DecryptFailed     AES-GCM unwrapping failed: tampered, or wrong context
            └── Pkcs11OperationFailed   any other error the module returned
"""
