"""Keys: signing keys and key-encryption keys behind one narrow interface.

The software keystore (``software.py``) is the embedded default; a PKCS#11 token is the
production backend. Callers only see :class:`~pavilion.keystore.signer.Signer`.
"""
